"""``/api/v1/payment-method``: the card or SEPA mandate the driver pays with, through ``payments.services``.

As in the portal, no card number or IBAN reaches us: the app asks for a SetupIntent, hands its client secret to
Stripe's SDK with what the driver types, then tells us the SetupIntent id, which we check with Stripe before storing
anything (brand, last 4, expiry, mandate reference).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from app.api.auth import current_account
from app.api.blueprints import ApiBlueprint
from app.api.problems import ApiProblem
from app.extensions import db, limiter
from app.payments import services
from app.payments.models import PaymentMethod

blp = ApiBlueprint(
    "api_payment_method",
    __name__,
    tag="Payment method",
    url_prefix="/api/v1/payment-method",
    description="The driver's payment method",
)

# The portal's own words (app.payments.views), so the catalogues already hold them.
_MESSAGES = {
    "invalid": _l("Something in the request was not valid. Please start again."),
    "not_found": _l("We could not find this payment method setup for your account."),
    "not_ready": _l("This payment method was not confirmed with your bank or card issuer. Please enter it again."),
    "conflict": _l("Your payment method was changed at the same time elsewhere. Please try again."),
    "unavailable": _l("Our payment provider cannot be reached right now. Please try again in a few minutes."),
}
_CODES = {
    "invalid": "setup_intent_invalid",
    "not_found": "setup_intent_not_found",
    "not_ready": "setup_intent_not_confirmed",
    "conflict": "payment_method_conflict",
    "unavailable": "payment_provider_unavailable",
}


class MethodOut(Schema):
    type = fields.String(required=True, validate=validate.OneOf(services.METHOD_TYPES))
    brand = fields.String(required=True, allow_none=True, metadata={"example": "visa"})
    last4 = fields.String(required=True, metadata={"example": "4242"})
    exp_month = fields.Integer(required=True, allow_none=True)
    exp_year = fields.Integer(required=True, allow_none=True)
    mandate_reference = fields.String(required=True, allow_none=True, metadata={"description": "SEPA only."})


class PaymentMethodStateOut(Schema):
    method = fields.Nested(MethodOut, required=True, allow_none=True)
    usable = fields.Boolean(required=True, metadata={"description": "Active and, for a card, not expired."})
    required_for_activation = fields.Boolean(required=True)


class SetupIntentIn(Schema):
    method_type = fields.String(required=True, validate=validate.OneOf(services.METHOD_TYPES))


class SetupIntentOut(Schema):
    client_secret = fields.String(required=True, metadata={"description": "For Stripe's SDK; never store it."})
    setup_intent_id = fields.String(required=True)
    publishable_key = fields.String(required=True)


class ConfirmIn(Schema):
    setup_intent_id = fields.String(
        required=True, validate=validate.Length(min=1, max=120), metadata={"example": "seti_1234"}
    )


def _state() -> dict[str, Any]:
    account = current_account()
    method: PaymentMethod | None = services.active_payment_method(account.id)
    return {
        "method": None
        if method is None
        else {
            "type": method.method_type,
            "brand": method.brand,
            "last4": method.last4,
            "exp_month": method.exp_month,
            "exp_year": method.exp_year,
            "mandate_reference": method.mandate_reference,
        },
        "usable": services.has_valid_payment_method(account.id),
        "required_for_activation": services.payment_method_required_for_activation(),
    }


def _problem(error: services.PaymentError) -> ApiProblem:
    message = _MESSAGES.get(error.code, _l("The payment method could not be saved."))
    return ApiProblem(
        error.http_status, _CODES.get(error.code, "payment_method_refused"), message, detail=error.message
    )


@blp.route("", methods=["GET"])
@blp.response(200, PaymentMethodStateOut)
def show() -> dict[str, Any]:
    """The saved payment method (none yet: `method` is null) and whether it can pay."""
    return _state()


@blp.route("/setup-intent", methods=["POST"])
@limiter.limit("20 per minute;100 per day")
@blp.arguments(SetupIntentIn)
@blp.response(201, SetupIntentOut)
def setup_intent(body: dict[str, Any]) -> dict[str, Any]:
    """A SetupIntent for Stripe's SDK to confirm with the card or IBAN the driver types."""
    account = current_account()
    try:
        services.ensure_customer(account)
        db.session.commit()  # the Stripe customer exists now, whatever happens next
        info = services.create_setup_intent(account, body["method_type"])
    except services.PaymentError as error:
        db.session.rollback()
        raise _problem(error) from None
    db.session.commit()
    return {
        "client_secret": info.client_secret,
        "setup_intent_id": info.id,
        "publishable_key": current_app.config["STRIPE_PUBLISHABLE_KEY"],
    }


@blp.route("/confirm", methods=["POST"])
@limiter.limit("20 per minute")
@blp.arguments(ConfirmIn)
@blp.response(200, PaymentMethodStateOut)
def confirm(body: dict[str, Any]) -> dict[str, Any]:
    """After Stripe's SDK confirmed the SetupIntent: checked with Stripe, then it is the account's method."""
    account = current_account()
    try:
        services.record_setup_intent_result(account, body["setup_intent_id"])
    except services.PaymentError as error:
        db.session.rollback()
        raise _problem(error) from None
    db.session.commit()
    # After the commit: the replaced method pays nothing any more; detaching it at Stripe is retried on failure.
    if services.detach_replaced_methods(account.id):
        db.session.commit()
    return _state()
