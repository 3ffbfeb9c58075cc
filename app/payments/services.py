"""Payment-method use cases: the Stripe customer of an account and the card or SEPA mandate it pays with.

No card data or IBAN ever reaches us: the browser hands them to Stripe (Stripe.js, SetupIntent), and we only
read back from Stripe what is safe to show (brand, last 4, expiry, IBAN last 4).

Services flush, never commit (the request or command owns the transaction). Every Stripe call made before the
commit is idempotent (an idempotency key, or setting a value that a retry sets again), and the one that is not
undoable (detaching a replaced method) runs after the commit through :func:`detach_replaced_methods`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import stripe
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Account, Role
from app.db import utcnow
from app.extensions import db
from app.payments.models import PaymentMethod, PaymentMethodStatus, StripeCustomer
from app.payments.stripe_client import idempotency_key, stripe_client, stripe_field

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams, SetupIntentCreateParams

log = logging.getLogger(__name__)

MethodType = Literal["card", "sepa_debit"]
METHOD_TYPES: tuple[MethodType, ...] = ("card", "sepa_debit")
_SETUP_INTENT_ID = re.compile(r"^seti_[A-Za-z0-9]{1,100}$")


class PaymentError(Exception):
    """A payment-method use case refused or could not complete. ``code`` lets a door pick its answer:

    - ``invalid``: the input is malformed (400);
    - ``not_found``: no such SetupIntent for this account, or it belongs to someone else (404);
    - ``not_ready``: the SetupIntent has not succeeded (yet) (409);
    - ``conflict``: a concurrent change won the race; try again (409);
    - ``unavailable``: Stripe could not be reached or refused the call (502).
    """

    HTTP_STATUS = {"invalid": 400, "not_found": 404, "not_ready": 409, "conflict": 409, "unavailable": 502}

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return self.HTTP_STATUS.get(self.code, 400)


@dataclass(frozen=True)
class SetupIntentInfo:
    client_secret: str
    id: str


def _stripe_unavailable(action: str, error: stripe.StripeError) -> PaymentError:
    log.warning("Stripe %s failed: %s (%s)", action, error.user_message or error, type(error).__name__)
    return PaymentError("unavailable", "The payment provider could not be reached. Please try again later.")


def _id_of(value: Any) -> str | None:
    """An id field that may be expanded into an object."""
    return value if isinstance(value, str) or value is None else stripe_field(value, "id")


# --- customer ----------------------------------------------------------------------------------------------


def stripe_customer_of(account_id: int) -> StripeCustomer | None:
    return db.session.get(StripeCustomer, account_id)


def _customer_params(account: Account) -> CustomerCreateParams:
    driver_emails = sorted(user.email for user in account.users if user.role == Role.DRIVER)
    params: CustomerCreateParams = {
        "name": account.company_name or account.full_name,
        "address": {
            "line1": account.street,
            "postal_code": account.postal_code,
            "city": account.city,
            "country": account.country,
        },
        "preferred_locales": [account.language],
        "metadata": {"account_id": str(account.id)},
    }
    if driver_emails:
        params["email"] = driver_emails[0]
    return params


def ensure_customer(account: Account) -> StripeCustomer:
    """The account's Stripe customer, created at Stripe the first time.

    The create carries an idempotency key derived from the account, so a retry after a lost response or a
    rolled-back transaction gets the same customer back from Stripe (for 24 hours); the row's primary key on
    ``account_id`` keeps it to one customer on our side. Callers should commit soon after the first call.
    """
    existing = stripe_customer_of(account.id)
    if existing is not None:
        return existing
    created_at = int((account.created_at or utcnow()).timestamp())
    try:
        customer = stripe_client().v1.customers.create(
            params=_customer_params(account),
            options={"idempotency_key": idempotency_key("customer", account.id, created_at)},
        )
    except stripe.StripeError as error:
        raise _stripe_unavailable("customer create", error) from error
    row = StripeCustomer(account_id=account.id, stripe_customer_id=customer.id)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        # A concurrent request stored it first (with the same customer, thanks to the idempotency key).
        winner = stripe_customer_of(account.id)
        if winner is None:
            raise
        return winner
    return row


# --- SetupIntent -------------------------------------------------------------------------------------------


def create_setup_intent(account: Account, method_type: MethodType) -> SetupIntentInfo:
    """A new SetupIntent for the browser to confirm with Stripe.js (card or SEPA Direct Debit mandate)."""
    if method_type not in METHOD_TYPES:
        raise PaymentError("invalid", "Choose a card or SEPA Direct Debit.")
    customer = ensure_customer(account)
    # stripe-python's typed params follow its newest API version, which lists no ``payment_method_types``; the
    # API still takes it, hence the ignore.
    params: SetupIntentCreateParams = {  # type: ignore[typeddict-unknown-key]
        "customer": customer.stripe_customer_id,
        "payment_method_types": [method_type],
        # Charged later, when the driver is not on the page (monthly invoice).
        "usage": "off_session",
        "metadata": {"account_id": str(account.id)},
    }
    try:
        intent = stripe_client().v1.setup_intents.create(
            params=params,
            # New intent on every call, but a network retry of this call must not create a second one.
            options={"idempotency_key": idempotency_key("setup-intent", account.id, unique=True)},
        )
    except stripe.StripeError as error:
        raise _stripe_unavailable("setup intent create", error) from error
    return SetupIntentInfo(client_secret=intent.client_secret or "", id=intent.id)


def _retrieve_owned_setup_intent(customer: StripeCustomer, setup_intent_id: str) -> Any:
    try:
        intent = stripe_client().v1.setup_intents.retrieve(setup_intent_id)
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            raise PaymentError("not_found", "This payment method setup is unknown.") from error
        raise _stripe_unavailable("setup intent retrieve", error) from error
    except stripe.StripeError as error:
        raise _stripe_unavailable("setup intent retrieve", error) from error
    if _id_of(stripe_field(intent, "customer")) != customer.stripe_customer_id:
        # Somebody else's SetupIntent (or one without customer): same answer as unknown, no leaking.
        log.warning("SetupIntent %s does not belong to customer %s", setup_intent_id, customer.stripe_customer_id)
        raise PaymentError("not_found", "This payment method setup is unknown.")
    status = stripe_field(intent, "status")
    if status != "succeeded":
        if status == "processing":
            raise PaymentError("not_ready", "Your bank is still confirming this payment method. Try again shortly.")
        raise PaymentError("not_ready", "This payment method was not confirmed. Please enter it again.")
    if not _id_of(stripe_field(intent, "payment_method")):
        raise PaymentError("not_ready", "This payment method was not confirmed. Please enter it again.")
    return intent


def _retrieve_attached_payment_method(customer: StripeCustomer, payment_method_id: str) -> Any:
    client = stripe_client()
    try:
        method = client.v1.payment_methods.retrieve(payment_method_id)
        attached_to = _id_of(stripe_field(method, "customer"))
        if attached_to is None:
            # Real Stripe attaches the method to the SetupIntent's customer when it succeeds; emulators may not.
            # Attaching is idempotent for the same customer.
            method = client.v1.payment_methods.attach(
                payment_method_id,
                params={"customer": customer.stripe_customer_id},
                options={"idempotency_key": idempotency_key("attach", payment_method_id, customer.stripe_customer_id)},
            )
            attached_to = customer.stripe_customer_id
    except stripe.StripeError as error:
        raise _stripe_unavailable("payment method retrieve/attach", error) from error
    if attached_to != customer.stripe_customer_id:
        log.warning("PaymentMethod %s is attached to another customer", payment_method_id)
        raise PaymentError("not_found", "This payment method setup is unknown.")
    return method


def _mandate_reference(intent: Any, method: Any) -> str | None:
    """The SEPA mandate reference (UMR) the bank will debit under, as Stripe generated it.

    Stripe: the confirmed SetupIntent names its ``mandate``; the Mandate object carries the reference in
    ``payment_method_details.sepa_debit.reference``. The older Sources-style ``sepa_debit.mandate_reference`` on
    the payment method (what the localstripe emulator returns) is read when there is no Mandate object."""
    mandate = stripe_field(intent, "mandate")
    if isinstance(mandate, str):
        try:
            mandate = stripe_client().v1.mandates.retrieve(mandate)
        except stripe.StripeError as error:
            raise _stripe_unavailable("mandate retrieve", error) from error
    reference = stripe_field(stripe_field(stripe_field(mandate, "payment_method_details"), "sepa_debit"), "reference")
    reference = reference or stripe_field(stripe_field(method, "sepa_debit"), "mandate_reference")
    return str(reference)[:64] if reference else None


def _row_from_stripe(account_id: int, method: Any, intent: Any = None) -> PaymentMethod:
    method_type = stripe_field(method, "type")
    if method_type == "card":
        card = stripe_field(method, "card")
        return PaymentMethod(
            account_id=account_id,
            stripe_payment_method_id=method.id,
            method_type="card",
            brand=(stripe_field(card, "brand") or "unknown")[:20],
            last4=str(stripe_field(card, "last4")),
            exp_month=stripe_field(card, "exp_month"),
            exp_year=stripe_field(card, "exp_year"),
        )
    if method_type == "sepa_debit":
        sepa = stripe_field(method, "sepa_debit")
        return PaymentMethod(
            account_id=account_id,
            stripe_payment_method_id=method.id,
            method_type="sepa_debit",
            brand=None,
            last4=str(stripe_field(sepa, "last4")),
            exp_month=None,
            exp_year=None,
            mandate_reference=_mandate_reference(intent, method),
        )
    raise PaymentError("invalid", "This kind of payment method is not accepted. Use a card or SEPA Direct Debit.")


def _row_for(stripe_payment_method_id: str) -> PaymentMethod | None:
    return db.session.scalar(
        select(PaymentMethod).where(PaymentMethod.stripe_payment_method_id == stripe_payment_method_id)
    )


def record_setup_intent_result(account: Account, setup_intent_id: str) -> PaymentMethod:
    """Store the payment method a succeeded SetupIntent saved, making it the account's active method.

    Everything is verified with Stripe server-side: the SetupIntent must belong to this account's customer and
    have succeeded. The previous active method is marked REPLACED (detach it at Stripe after commit with
    :func:`detach_replaced_methods`) and the new one becomes the customer's default for invoices. Calling it
    again with the same SetupIntent is a no-op that returns the same row.
    """
    setup_intent_id = (setup_intent_id or "").strip()
    if not _SETUP_INTENT_ID.match(setup_intent_id):
        raise PaymentError("invalid", "The payment method setup reference is malformed.")
    customer = stripe_customer_of(account.id)
    if customer is None:
        raise PaymentError("not_found", "This payment method setup is unknown.")
    intent = _retrieve_owned_setup_intent(customer, setup_intent_id)
    payment_method_id = _id_of(stripe_field(intent, "payment_method"))
    assert payment_method_id is not None  # checked above

    known = _row_for(payment_method_id)
    if known is not None:
        if known.account_id != account.id:  # cannot happen while the customer check holds; refuse anyway
            raise PaymentError("not_found", "This payment method setup is unknown.")
        return known

    method = _retrieve_attached_payment_method(customer, payment_method_id)
    row = _row_from_stripe(account.id, method, intent)
    try:
        with db.session.begin_nested():
            previous = active_payment_method(account.id)
            if previous is not None:
                previous.status = PaymentMethodStatus.REPLACED
                previous.replaced_at = utcnow()
                # The one-active-method index must see the old row leave before the new one arrives.
                db.session.flush()
            db.session.add(row)
    except IntegrityError as error:
        known = _row_for(payment_method_id)
        if known is not None and known.account_id == account.id:
            return known  # the same confirmation arrived twice at once
        raise PaymentError("conflict", "Your payment method was changed at the same time. Please try again.") from error

    try:
        # Idempotent: a retry sets the same default again.
        stripe_client().v1.customers.update(
            customer.stripe_customer_id,
            params={"invoice_settings": {"default_payment_method": payment_method_id}},
        )
    except stripe.StripeError as error:
        raise _stripe_unavailable("customer default payment method update", error) from error
    return row


def detach_replaced_methods(account_id: int) -> int:
    """Detach the account's REPLACED methods at Stripe and mark them DETACHED; returns how many.

    Run after the commit that replaced them. Idempotent: a method Stripe already detached is only marked.
    A failure leaves the row REPLACED for the next run (it is no longer used for payments either way).
    """
    client = stripe_client()
    replaced = db.session.scalars(
        select(PaymentMethod).where(
            PaymentMethod.account_id == account_id, PaymentMethod.status == PaymentMethodStatus.REPLACED
        )
    ).all()
    detached = 0
    for row in replaced:
        try:
            method = client.v1.payment_methods.retrieve(row.stripe_payment_method_id)
            if _id_of(stripe_field(method, "customer")) is not None:
                client.v1.payment_methods.detach(row.stripe_payment_method_id)
        except stripe.InvalidRequestError as error:
            if error.http_status != 404:
                log.warning("could not detach %s: %s", row.stripe_payment_method_id, error)
                continue
        except stripe.StripeError as error:
            log.warning("could not detach %s: %s", row.stripe_payment_method_id, error)
            continue
        row.status = PaymentMethodStatus.DETACHED
        detached += 1
    db.session.flush()
    return detached


# --- queries used by card activation and billing -------------------------------------------------------------


def active_payment_method(account_id: int) -> PaymentMethod | None:
    return db.session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.account_id == account_id, PaymentMethod.status == PaymentMethodStatus.ACTIVE
        )
    )


def has_valid_payment_method(account_id: int, today: dt.date | None = None) -> bool:
    """Active and, for a card, not past its expiry month (a card is valid through its expiry month)."""
    method = active_payment_method(account_id)
    return method is not None and method.is_usable(today or utcnow().date())


def payment_method_required_for_activation() -> bool:
    return bool(current_app.config.get("REQUIRE_PAYMENT_METHOD_FOR_ACTIVATION", True))


def may_activate_cards(account_id: int, today: dt.date | None = None) -> bool:
    """What the card activation service asks: the setting is off, or the account has a valid method."""
    return not payment_method_required_for_activation() or has_valid_payment_method(account_id, today)


# --- backfill ------------------------------------------------------------------------------------------------


def sepa_methods_without_mandate(limit: int | None = None) -> list[PaymentMethod]:
    """Active SEPA methods with no mandate reference: saved before we recorded it (migration c41e7d2b9a10).
    Their invoices cannot name the mandate (SEPA pre-notification, Peppol R061) until it is filled in."""
    query = (
        select(PaymentMethod)
        .where(
            PaymentMethod.method_type == "sepa_debit",
            PaymentMethod.mandate_reference.is_(None),
            PaymentMethod.status == PaymentMethodStatus.ACTIVE,
        )
        .order_by(PaymentMethod.id)
    )
    return list(db.session.scalars(query.limit(limit) if limit else query))


def _setup_intent_of(customer_id: str, payment_method_id: str) -> Any:
    """The succeeded SetupIntent that saved this payment method (it names the mandate), or None. Stripe filters
    by ``payment_method``; we check it again (an emulator may ignore the filter)."""
    intents = stripe_client().v1.setup_intents.list(
        {"customer": customer_id, "payment_method": payment_method_id, "limit": 100}
    )
    for intent in stripe_field(intents, "data") or []:
        if (
            _id_of(stripe_field(intent, "payment_method")) == payment_method_id
            and stripe_field(intent, "status") == "succeeded"
        ):
            return intent
    return None


def fill_mandate_reference(row: PaymentMethod) -> str | None:
    """Ask Stripe for the mandate reference of one SEPA method and store it (flushed); None when Stripe has
    none to give. Raises :class:`PaymentError` (``unavailable``) when Stripe cannot be asked: nothing changes."""
    customer = stripe_customer_of(row.account_id)
    if customer is None:
        return None
    client = stripe_client()
    try:
        method = client.v1.payment_methods.retrieve(row.stripe_payment_method_id)
        intent = _setup_intent_of(customer.stripe_customer_id, row.stripe_payment_method_id)
    except stripe.StripeError as error:
        raise _stripe_unavailable("mandate backfill", error) from error
    reference = _mandate_reference(intent, method)
    if reference:
        row.mandate_reference = reference
        db.session.flush()
    return reference
