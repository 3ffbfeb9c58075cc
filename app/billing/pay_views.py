"""Portal: the driver's open balance and "pay now".

``GET /balance`` lists unpaid invoices and the open balance. ``POST /balance/pay`` charges each unpaid invoice
with the saved card or SEPA mandate, on-session. When the bank asks for 3-D Secure, the JSON answer carries
the PaymentIntent's client secret; the page's Stripe.js (``static/js/pay_now.js``) completes it with the
driver and posts again with the PaymentIntent id, which we check with Stripe before going on. Without
JavaScript the form still works for payments that need no authentication.
"""

from __future__ import annotations

from typing import Any, TypedDict

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.access import driver_required
from app.accounts.services import send_pending
from app.billing.collection import services as collection
from app.billing.models import Dunning, Invoice, PaymentState
from app.extensions import db, limiter
from app.payments.services import active_payment_method, has_valid_payment_method

bp = Blueprint("billing_pay", __name__)

REAL_STRIPE_JS_PREFIX = "https://js.stripe.com/"


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


class _BalanceRow(TypedDict):
    """One unpaid invoice on the balance page."""

    invoice: Invoice
    due: int
    received: int
    dunning: Dunning | None


@bp.get("/balance")
@driver_required
def balance() -> str:
    account = current_user.account
    invoices = collection.open_invoices(account.id)
    rows: list[_BalanceRow] = [
        {
            "invoice": invoice,
            "due": collection.amount_due_minor(invoice),
            "received": collection.received_minor(invoice),  # a partial payment: the due is what is left
            "dunning": db.session.get(Dunning, invoice.id),
        }
        for invoice in invoices
    ]
    config = current_app.config
    return render_template(
        "portal/billing/balance.html",
        rows=rows,
        balance=collection.open_balance_minor(account.id),
        method=active_payment_method(account.id),
        usable=has_valid_payment_method(account.id),
        blocked=any(row["invoice"].payment_state == PaymentState.UNCOLLECTIBLE for row in rows),
        stripe_js_url=config["STRIPE_JS_URL"],
        publishable_key=config["STRIPE_PUBLISHABLE_KEY"],
    )


def _answer(result: collection.PayNowResult) -> ResponseReturnValue:
    messages = {
        "paid": _("Thank you: your payment was received."),
        "processing": _("Your direct debit is under way. We will let you know when your bank confirms it."),
        "nothing_due": _("There is nothing to pay."),
        "failed": _("Your payment did not go through. Please check your payment method or try another one."),
        "requires_action": _("Please confirm the payment with your bank."),
        "error": _("Our payment provider cannot be reached right now. Please try again in a few minutes."),
    }
    status = result.status
    category = {
        "paid": "success",
        "processing": "info",
        "nothing_due": "info",
        "failed": "error",
        "requires_action": "warning",
        "error": "error",
    }[status]
    if _wants_json():
        if status != "requires_action":
            flash(messages[status], category)  # shown on the page the script reloads
        body: dict[str, Any] = {
            "status": status,
            "message": messages[status],
            "redirect": url_for(".balance"),
            "paid": [invoice.number for invoice in result.paid],
        }
        if status == "requires_action":
            body.update(client_secret=result.client_secret, payment_intent=result.payment_intent_id)
        if status == "failed" and result.message:
            body["detail"] = result.message
        return jsonify(body), (502 if status == "error" else 200)
    flash(messages[status], category)
    return redirect(url_for(".balance"))


@bp.post("/balance/pay")
@driver_required
@limiter.limit("10 per minute;50 per day")
def pay() -> ResponseReturnValue:
    """Form post or JSON (``X-CSRFToken``); optional ``payment_intent`` after 3-D Secure in the browser."""
    payload = (request.get_json(silent=True) or {}) if request.is_json else request.form
    payment_intent = str(payload.get("payment_intent") or "").strip() or None
    if payment_intent is not None and not payment_intent.startswith("pi_"):
        abort(400)
    account = current_user.account
    if payment_intent is None and not has_valid_payment_method(account.id):
        message = _("Add a valid payment method first.")
        if _wants_json():
            return jsonify(
                status="no_payment_method", message=message, redirect=url_for("payments.payment_method")
            ), 409
        flash(message, "error")
        return redirect(url_for("payments.payment_method"))
    try:
        result = collection.pay_open_balance(account.id, payment_intent_id=payment_intent)
    except LookupError:
        db.session.rollback()
        abort(404)
    db.session.commit()
    send_pending(result.emails)
    return _answer(result)
