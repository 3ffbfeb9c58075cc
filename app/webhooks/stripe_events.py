"""Reading a Stripe webhook: the signature (with a tolerance on both sides of now), then the event's fields.

Two kinds of "no":

- the signature does not hold (missing, wrong secret, altered body, timestamp more than the tolerance in the
  past *or in the future*): :class:`stripe.SignatureVerificationError`, answered 400 — it is not from Stripe;
- the event is Stripe's but we cannot use it (not JSON, fields missing or of the wrong type, out of bounds, an
  unknown PaymentIntent, a type we do not handle): :class:`UnusableEventError` with the reason, answered 2xx —
  otherwise Stripe retries it for days, and it would never get better.

``stripe.Webhook.construct_event`` (stripe-python 16) refuses old timestamps only: ``timestamp < now -
tolerance``; a timestamp in the future passes whatever its distance. :func:`verify_signature` adds that check.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import stripe

from app.billing.collection.services import Received

# Stripe's own default: a signed request older than this is a replay.
SIGNATURE_TOLERANCE_SECONDS = 300
# Stripe amounts have at most 8 digits (99,999,999 in the smallest unit); our columns are 32-bit integers.
MAX_AMOUNT_MINOR = 99_999_999
MAX_ID_LENGTH = 64
ATTEMPT = re.compile(r"[0-9]{1,6}")
CURRENCY = re.compile(r"[A-Za-z]{3}")
PRINTABLE = re.compile(r"[\x21-\x7e]+")


class UnusableEventError(Exception):
    """A signed event we cannot use: acknowledged, recorded with ``reason``, nothing changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:255]


def verify_signature(
    payload: bytes,
    header: str | None,
    secret: str,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> None:
    """Stripe's check (HMAC-SHA256 of ``"{t}.{body}"``, ``t`` at most ``tolerance`` seconds old), and ``t`` at
    most ``tolerance`` seconds ahead of our clock: a signature made for later cannot be held back and replayed
    once its time has come. Raises :class:`stripe.SignatureVerificationError`; ``ValueError`` when the body is
    not text (it cannot have been signed)."""
    text = payload.decode("utf-8")
    stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
    # verify_header parsed the header already: the timestamp is the first ``t=`` item, as it reads it.
    assert header is not None
    timestamp = int(next(item.split("=", 1)[1] for item in header.split(",") if item.split("=", 1)[0] == "t"))
    now = time.time() if now is None else now
    if timestamp > now + tolerance:
        raise stripe.SignatureVerificationError(  # type: ignore[no-untyped-call]
            f"Timestamp too far in the future ({timestamp})", header, text
        )


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    object: Any  # ``data.object``, unchecked: each handler reads what it needs


def read_envelope(payload: bytes) -> Envelope:
    """The event's id, type and ``data.object``. :class:`UnusableEventError` when there is no usable id (then it
    cannot even be recorded); a missing type or object is for the handler to refuse, under the event's id."""
    try:
        event = json.loads(payload)
    except ValueError:
        raise UnusableEventError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise UnusableEventError("the body is not a JSON object")
    event_id = event.get("id")
    if not isinstance(event_id, str) or len(event_id) > MAX_ID_LENGTH or not PRINTABLE.fullmatch(event_id):
        raise UnusableEventError("the event has no usable id")
    event_type = event.get("type")
    data = event.get("data")
    return Envelope(
        id=event_id,
        type=event_type[:80] if isinstance(event_type, str) else "",
        object=data.get("object") if isinstance(data, dict) else None,
    )


# --- fields of the objects we handle --------------------------------------------------------------------------


def _object(obj: Any, expected: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise UnusableEventError("data.object is missing or not an object")
    if obj.get("object", expected) != expected:
        raise UnusableEventError(f"data.object is not a {expected}")
    return obj


def _amount(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_AMOUNT_MINOR:
        raise UnusableEventError(f"{name} is not a whole number from 0 to {MAX_AMOUNT_MINOR}")
    return value


def _stripe_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not PRINTABLE.fullmatch(value):
        raise UnusableEventError(f"{what} has no usable id")
    return value


def _text(obj: Any, name: str, limit: int) -> str | None:
    value = obj.get(name) if isinstance(obj, dict) else None
    return value[:limit] if isinstance(value, str) else None


@dataclass(frozen=True)
class IntentFields:
    """What we use of a PaymentIntent, checked."""

    id: str
    amount: int | None
    received: Received | None  # a success only: what it brought in
    failure_message: str | None
    invoice_number: str | None = None
    account_id: str | None = None
    attempt: int | None = None


def intent_fields(obj: Any, status: str) -> IntentFields:
    """The PaymentIntent of a ``payment_intent.*`` event. A success must say what it brought in
    (``amount_received``, else ``amount``, and ``currency``): we never count it for what we asked."""
    intent = _object(obj, "payment_intent")
    intent_id = _stripe_id(intent.get("id"), "the PaymentIntent")
    reported = intent.get("status")
    if status == "succeeded" and reported is not None and reported != "succeeded":
        raise UnusableEventError(f"a payment_intent.succeeded whose PaymentIntent is {str(reported)[:30]!r}")
    amount = _amount(intent, "amount")
    amount_received = _amount(intent, "amount_received")
    currency = intent.get("currency")
    if currency is not None and (not isinstance(currency, str) or not CURRENCY.fullmatch(currency)):
        raise UnusableEventError("currency is not a three-letter code")
    received = None
    if status == "succeeded":
        brought = amount_received if amount_received is not None else amount
        if brought is None or currency is None:
            raise UnusableEventError("the success does not say what was received (amount_received, currency)")
        received = Received(brought, currency.upper())
    metadata = intent.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise UnusableEventError("metadata is not an object")
    error = intent.get("last_payment_error")
    if error is not None and not isinstance(error, dict):
        raise UnusableEventError("last_payment_error is not an object")
    attempt = metadata.get("attempt")
    number = metadata.get("invoice_number")
    account_id = metadata.get("account_id")
    return IntentFields(
        id=intent_id,
        amount=amount,
        received=received,
        failure_message=_text(error, "message", 2000),
        invoice_number=number if isinstance(number, str) and 0 < len(number) <= 32 else None,
        account_id=str(account_id) if isinstance(account_id, str | int) and not isinstance(account_id, bool) else None,
        attempt=int(attempt) if isinstance(attempt, str) and ATTEMPT.fullmatch(attempt) else None,
    )


@dataclass(frozen=True)
class RefundedChargeFields:
    payment_intent_id: str
    amount: int | None
    amount_refunded: int | None
    refunded: bool


def refunded_charge_fields(obj: Any) -> RefundedChargeFields:
    charge = _object(obj, "charge")
    intent = charge.get("payment_intent")
    intent_id = _stripe_id(intent.get("id") if isinstance(intent, dict) else intent, "the charge's PaymentIntent")
    refunded = charge.get("refunded")
    if refunded is not None and not isinstance(refunded, bool):
        raise UnusableEventError("refunded is not true or false")
    return RefundedChargeFields(
        payment_intent_id=intent_id,
        amount=_amount(charge, "amount"),
        amount_refunded=_amount(charge, "amount_refunded"),
        refunded=bool(refunded),
    )
