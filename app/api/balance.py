"""``/api/v1/balance``: what the driver owes now, and "pay now" with the saved method, through
``billing.collection`` (the portal's balance page and its rules: oldest invoice first, stop at the first that needs
3-D Secure or fails; paying lifts payment blocks once nothing is overdue).

When the bank asks for 3-D Secure the answer carries the PaymentIntent's client secret: the app completes it with
Stripe's SDK and calls ``POST /balance/pay`` again with ``payment_intent``.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from app.accounts.services import send_pending
from app.api.auth import current_account
from app.api.blueprints import ApiBlueprint
from app.api.problems import ApiProblem, in_caller_language
from app.api.schemas import MoneyOut, minor
from app.billing.collection import services as collection
from app.billing.models import Dunning, PaymentState
from app.extensions import db, limiter
from app.payments.services import has_valid_payment_method

blp = ApiBlueprint(
    "api_balance", __name__, tag="Balance", url_prefix="/api/v1/balance", description="Open balance and pay now"
)

PAY_STATUSES = ("paid", "processing", "nothing_due", "failed", "requires_action")
# The portal's words (app.billing.pay_views), already in the catalogues.
_PAY_MESSAGES = {
    "paid": _l("Thank you: your payment was received."),
    "processing": _l("Your direct debit is under way. We will let you know when your bank confirms it."),
    "nothing_due": _l("There is nothing to pay."),
    "failed": _l("Your payment did not go through. Please check your payment method or try another one."),
    "requires_action": _l("Please confirm the payment with your bank."),
}


class OpenInvoiceOut(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    issue_date = fields.Date(required=True)
    due_date = fields.Date(required=True, allow_none=True)
    total = fields.Nested(MoneyOut, required=True)
    received = fields.Nested(MoneyOut, required=True)
    due = fields.Nested(MoneyOut, required=True)
    payment_state = fields.String(required=True, validate=validate.OneOf([state.value for state in PaymentState]))
    reminders_sent = fields.Integer(required=True)


class BalanceOut(Schema):
    to_pay = fields.List(fields.Nested(MoneyOut), required=True, metadata={"description": "Per currency."})
    invoices = fields.List(fields.Nested(OpenInvoiceOut), required=True, metadata={"description": "Oldest first."})
    payment_method_usable = fields.Boolean(required=True)
    cards_blocked_for_payment = fields.Boolean(required=True)


class PayIn(Schema):
    payment_intent = fields.String(
        validate=validate.Regexp(r"^pi_[A-Za-z0-9_]{1,100}$"),
        metadata={"description": "After 3-D Secure: the PaymentIntent the app completed."},
    )


class PayOut(Schema):
    status = fields.String(required=True, validate=validate.OneOf(PAY_STATUSES))
    message = fields.String(required=True)
    paid = fields.List(fields.String(), required=True, metadata={"description": "Numbers of the invoices paid."})
    client_secret = fields.String(allow_none=True, metadata={"description": "requires_action: for Stripe's SDK."})
    payment_intent = fields.String(allow_none=True)
    detail = fields.String(allow_none=True, metadata={"description": "failed: the bank's reason."})
    balance = fields.Nested(BalanceOut, required=True)


def _balance() -> dict[str, Any]:
    account = current_account()
    rows = []
    for invoice in collection.open_invoices(account.id):
        dunning = db.session.get(Dunning, invoice.id)
        rows.append(
            {
                "id": invoice.id,
                "number": invoice.number,
                "issue_date": invoice.issue_date,
                "due_date": invoice.due_date,
                "total": minor(invoice.total_minor, invoice.currency),
                "received": minor(collection.received_minor(invoice), invoice.currency),
                "due": minor(collection.amount_due_minor(invoice), invoice.currency),
                "payment_state": invoice.payment_state.value,
                "reminders_sent": dunning.stage if dunning else 0,
            }
        )
    return {
        "to_pay": [minor(amount, currency) for currency, amount in collection.open_balance_minor(account.id).items()],
        "invoices": rows,
        "payment_method_usable": has_valid_payment_method(account.id),
        "cards_blocked_for_payment": any(row["payment_state"] == PaymentState.UNCOLLECTIBLE.value for row in rows),
    }


@blp.route("", methods=["GET"])
@blp.response(200, BalanceOut)
def show() -> dict[str, Any]:
    """What can be paid now (per currency) and the unpaid invoices."""
    return _balance()


@blp.route("/pay", methods=["POST"])
@limiter.limit("10 per minute;50 per day")
@blp.arguments(PayIn)
@blp.response(200, PayOut)
def pay(body: dict[str, Any]) -> dict[str, Any]:
    """Pay every unpaid invoice with the saved method, oldest first (or go on after 3-D Secure)."""
    account = current_account()
    payment_intent = body.get("payment_intent")
    if payment_intent is None and not has_valid_payment_method(account.id):
        raise ApiProblem(409, "payment_method_required", _l("Add a valid payment method first."))
    try:
        result = collection.pay_open_balance(account.id, payment_intent_id=payment_intent)
    except LookupError:
        db.session.rollback()
        raise ApiProblem(404, "payment_not_found", _l("This payment does not exist or is not yours.")) from None
    db.session.commit()
    send_pending(result.emails)
    if result.status == "error":
        raise ApiProblem(
            502,
            "payment_provider_unavailable",
            _l("Our payment provider cannot be reached right now. Please try again in a few minutes."),
        )
    with in_caller_language():
        message = str(_PAY_MESSAGES[result.status])
    answer: dict[str, Any] = {
        "status": result.status,
        "message": message,
        "paid": [invoice.number for invoice in result.paid if invoice.number],
        "balance": _balance(),
    }
    if result.status == "requires_action":
        answer.update(client_secret=result.client_secret, payment_intent=result.payment_intent_id)
    if result.status == "failed" and result.message:
        answer["detail"] = result.message
    return answer
