"""Portal pages for the driver's payment method (card or SEPA Direct Debit mandate, through Stripe.js).

The browser gets a SetupIntent client secret from us, hands the card or IBAN straight to Stripe with Stripe.js,
then tells us the SetupIntent id; we verify it with Stripe server-side before storing anything.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.access import driver_required
from app.extensions import db, limiter
from app.payments import services
from app.payments.models import PaymentMethod, PaymentMethodStatus

bp = Blueprint("payments", __name__)

BRAND_LABELS = {
    "amex": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}
REAL_STRIPE_JS_PREFIX = "https://js.stripe.com/"


def _error_message(error: services.PaymentError) -> str:
    # Translated here (not in the service) so the catalogue extractor sees every message.
    messages: dict[str, str] = {
        "invalid": _("Something in the request was not valid. Please start again."),
        "not_found": _("We could not find this payment method setup for your account."),
        "not_ready": _("This payment method was not confirmed with your bank or card issuer. Please enter it again."),
        "conflict": _("Your payment method was changed at the same time elsewhere. Please try again."),
        "unavailable": _("Our payment provider cannot be reached right now. Please try again in a few minutes."),
    }
    fallback: str = _("The payment method could not be saved.")
    return messages.get(error.code, fallback)


def _describe(method: PaymentMethod) -> dict[str, Any]:
    if method.method_type == "sepa_debit":
        label = _("SEPA Direct Debit •••• %(last4)s", last4=method.last4)
        expiry = None
    else:
        brand = BRAND_LABELS.get(method.brand or "", (method.brand or _("Card")).replace("_", " ").title())
        label = _("%(brand)s •••• %(last4)s", brand=brand, last4=method.last4)
        expiry = f"{method.exp_month:02d}/{method.exp_year}" if method.exp_month and method.exp_year else None
    return {"type": method.method_type, "label": label, "last4": method.last4, "expiry": expiry}


def _json_object() -> dict[str, Any]:
    payload = request.get_json(silent=True)
    return payload if isinstance(payload, dict) else {}


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


@bp.get("/payment-method")
@driver_required
def payment_method() -> ResponseReturnValue:
    account = current_user.account
    method = services.active_payment_method(account.id)
    config = current_app.config
    return render_template(
        "portal/payments/payment_method.html",
        account=account,
        method=method,
        description=_describe(method) if method else None,
        usable=services.has_valid_payment_method(account.id),
        stripe_js_url=config["STRIPE_JS_URL"],
        publishable_key=config["STRIPE_PUBLISHABLE_KEY"],
        # localstripe's fake Stripe.js has no IBAN Element: the page falls back to a plain field whose value
        # goes to the emulator only (it has no name and is never posted to us).
        stripe_emulated=not config["STRIPE_JS_URL"].startswith(REAL_STRIPE_JS_PREFIX),
    )


@bp.post("/payment-method/setup-intent")
@driver_required
@limiter.limit("20 per minute;100 per day")
def create_setup_intent() -> ResponseReturnValue:
    """JSON: ``{"method_type": "card" | "sepa_debit"}`` → ``{client_secret, setup_intent_id, publishable_key}``.
    CSRF-protected through the ``X-CSRFToken`` header."""
    method_type = _json_object().get("method_type") or request.form.get("method_type")
    if method_type not in services.METHOD_TYPES:
        return jsonify(error=_("Choose a card or SEPA Direct Debit.")), 400
    account = current_user.account
    try:
        services.ensure_customer(account)
        # Keep the customer even if the SetupIntent call fails below: it exists at Stripe now.
        db.session.commit()
        info = services.create_setup_intent(account, method_type)
    except services.PaymentError as error:
        db.session.rollback()
        return jsonify(error=_error_message(error)), error.http_status
    db.session.commit()
    return jsonify(
        client_secret=info.client_secret,
        setup_intent_id=info.id,
        publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
    )


@bp.post("/payment-method/confirm")
@driver_required
@limiter.limit("20 per minute")
def confirm() -> ResponseReturnValue:
    """After Stripe.js confirmed the SetupIntent: form field or JSON key ``setup_intent``. Verified with Stripe."""
    payload = _json_object() if request.is_json else request.form
    setup_intent_id = str(payload.get("setup_intent") or "")
    account = current_user.account
    try:
        method = services.record_setup_intent_result(account, setup_intent_id)
    except services.PaymentError as error:
        db.session.rollback()
        if _wants_json():
            return jsonify(error=_error_message(error)), error.http_status
        if error.code == "not_found":
            abort(404)
        flash(_error_message(error), "error")
        return redirect(url_for("payments.payment_method"))
    db.session.commit()
    # After the commit: the replaced method no longer pays anything; detaching it is retried on failure.
    if services.detach_replaced_methods(account.id):
        db.session.commit()
    description = _describe(method)
    if _wants_json():
        return jsonify(
            status="ok",
            active=method.status == PaymentMethodStatus.ACTIVE,
            payment_method=description,
            redirect=url_for("payments.payment_method"),
        )
    if method.status != PaymentMethodStatus.ACTIVE:  # a replayed confirmation of an older, replaced method
        flash(_("This payment method was replaced by a newer one."), "info")
    else:
        flash(_("Your payment method is saved: %(label)s.", label=description["label"]), "success")
    return redirect(url_for("payments.payment_method"))
