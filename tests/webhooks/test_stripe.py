"""``POST /webhooks/stripe``: signature on the raw body, one handling per event id, payment states.

Where localstripe sends the event (payment_intent.succeeded / payment_failed), the test catches its delivery
and replays body and ``Stripe-Signature`` byte for byte; events localstripe never sends (processing,
charge.refunded) are built in Stripe's format and signed here exactly as Stripe signs:
``t=<timestamp>,v1=<HMAC-SHA256(secret, "<timestamp>.<body>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import requests
from sqlalchemy import select

from app.billing.collection.services import Outcome, collect_invoice
from app.billing.models import Dunning, Payment, PaymentState, StripeEvent
from app.extensions import db
from app.payments import services as payment_services
from tests.billing.conftest import (
    DECLINED_ON_CHARGE,
    WEBHOOK_SECRET,
    finalized_invoice,
    save_method,
    sepa_answers_processing,
    stripe_get,
)
from tests.factories import make_user
from tests.payments import stripe_js
from tests.payments.emulator import API_KEY

pytestmark = pytest.mark.usefixtures("stripe_app")


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(event_type: str, obj: dict, event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_test_{time.time_ns()}",
            "object": "event",
            "type": event_type,
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


def deliver(client, body: bytes, signature: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    headers["Stripe-Signature"] = sign(body) if signature is None else signature
    return client.post("/webhooks/stripe", data=body, headers=headers)


def caught(catcher, event_type: str, intent_id: str, timeout: float = 15) -> tuple[bytes, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = catcher.events(event_type, intent_id)
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"localstripe sent no {event_type} for {intent_id}")


def _sepa_debit_under_way(localstripe, monkeypatch, total_minor: int = 4200):  # type: ignore[no-untyped-def]
    """A driver with a SEPA mandate whose invoice's debit is processing (the bank settles days later)."""
    user = make_user()
    save_method(user.account, localstripe, stripe_js.sepa(stripe_js.IBAN_OK, email=user.email))
    invoice = finalized_invoice(user.account.id, total_minor)
    sepa_answers_processing(monkeypatch)
    result = collect_invoice(invoice, attempt=1)
    db.session.commit()
    assert result.outcome == Outcome.PROCESSING
    return user, invoice, result


def test_sepa_processing_then_succeeded_through_localstripes_signed_webhook(
    client, localstripe, webhook_catcher, mailbox, monkeypatch
):
    user, invoice, result = _sepa_debit_under_way(localstripe, monkeypatch)

    body, signature = caught(webhook_catcher, "payment_intent.succeeded", result.payment.stripe_id)
    response = deliver(client, body, signature)

    assert response.status_code == 200, response.get_data(as_text=True)
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID and invoice.paid_at is not None
    assert db.session.get(Payment, result.payment.id).status == "succeeded"
    assert db.session.get(StripeEvent, json.loads(body)["id"]).type == "payment_intent.succeeded"
    assert [mail["Subject"] for mail in mailbox.to(user.email)] == ["We received your payment"]


def test_a_failing_sepa_debit_fails_later_through_the_webhook_and_starts_dunning(
    client, localstripe, webhook_catcher, mailbox
):
    user = make_user()
    save_method(user.account, localstripe, stripe_js.sepa(stripe_js.IBAN_FAILS, email=user.email))
    invoice = finalized_invoice(user.account.id, 4200)
    result = collect_invoice(invoice, attempt=1)
    db.session.commit()
    assert invoice.payment_state == PaymentState.PROCESSING
    assert db.session.get(Dunning, invoice.id) is None

    body, signature = caught(webhook_catcher, "payment_intent.payment_failed", result.payment.stripe_id)
    assert deliver(client, body, signature).status_code == 200

    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.FAILED
    assert db.session.get(Payment, result.payment.id).status == "requires_payment_method"
    assert db.session.get(Dunning, invoice.id).stage == 0
    assert [mail["Subject"] for mail in mailbox.to(user.email)] == ["Your payment did not go through"]


def test_the_webhook_after_a_synchronous_decline_changes_nothing_more(client, localstripe, webhook_catcher, mailbox):
    user = make_user()
    save_method(user.account, localstripe, stripe_js.card(DECLINED_ON_CHARGE))
    invoice = finalized_invoice(user.account.id, 990)
    result = collect_invoice(invoice, attempt=1)
    db.session.commit()
    schedule = db.session.get(Dunning, invoice.id).next_attempt_at
    # localstripe's decline error names no PaymentIntent; its event does, with our metadata.
    intents = [
        intent
        for intent in stripe_get(localstripe, "payment_intents", limit=100)["data"]
        if intent["metadata"].get("invoice_number") == invoice.number
    ]
    body, signature = caught(webhook_catcher, "payment_intent.payment_failed", intents[0]["id"])

    assert deliver(client, body, signature).status_code == 200

    payment = db.session.get(Payment, result.payment.id)
    assert payment.stripe_id == intents[0]["id"]
    assert db.session.get(Dunning, invoice.id).next_attempt_at == schedule
    assert mailbox.to(user.email) == []  # the failure email is sent by whoever commits collect_invoice


@pytest.mark.parametrize("tamper", ["body", "secret", "missing", "stale", "future", "garbage"])
def test_a_bad_signature_is_refused_and_changes_nothing(client, tamper):
    user = make_user()
    invoice = finalized_invoice(user.account.id, 500)
    db.session.add(
        Payment(
            invoice_id=invoice.id,
            attempt=1,
            stripe_id="pi_bad_sig",
            amount_minor=500,
            currency="EUR",
            status="processing",
        )
    )
    invoice.payment_state = PaymentState.PROCESSING
    body = event(
        "payment_intent.succeeded",
        {
            "id": "pi_bad_sig",
            "object": "payment_intent",
            "status": "succeeded",
            "amount": 500,
            "amount_received": 500,
            "currency": "eur",
            "metadata": {},
        },
    )
    signature = {
        "body": sign(body.replace(b"500", b"501")),
        "secret": sign(body, "whsec_wrong"),
        "missing": "",
        "stale": sign(body, timestamp=int(time.time()) - 3600),
        # A valid signature made for later (held back to be replayed once its time comes): stripe-python's
        # construct_event checks only the past side of the tolerance.
        "future": sign(body, timestamp=int(time.time()) + 3600),
        "garbage": "nonsense",
    }[tamper]
    if tamper == "body":
        body, signature = body, sign(body)
        body = body.replace(b"500", b"501")

    response = deliver(client, body, signature)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 400
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PROCESSING
    assert db.session.scalars(select(StripeEvent)).all() == []


def test_a_repeated_event_is_acknowledged_and_ignored(client, mailbox):
    user = make_user()
    invoice = finalized_invoice(user.account.id, 500)
    db.session.add(
        Payment(
            invoice_id=invoice.id, attempt=1, stripe_id="pi_dup", amount_minor=500, currency="EUR", status="processing"
        )
    )
    invoice.payment_state = PaymentState.PROCESSING
    body = event(
        "payment_intent.succeeded",
        {
            "id": "pi_dup",
            "object": "payment_intent",
            "status": "succeeded",
            "amount": 500,
            "amount_received": 500,
            "currency": "eur",
            "metadata": {},
        },
        event_id="evt_dup_1",
    )

    first, second = deliver(client, body), deliver(client, body)

    assert first.status_code == 200 and second.status_code == 200
    assert second.get_json() == {"received": True, "duplicate": True}
    assert len(mailbox.to(user.email)) == 1
    assert db.session.scalars(select(StripeEvent)).all()[0].id == "evt_dup_1"


def test_unknown_event_types_are_acknowledged(client):
    response = deliver(client, event("customer.created", {"id": "cus_x", "object": "customer"}))
    assert response.status_code == 200


def test_processing_then_refunded_in_full(client, localstripe):
    user = make_user()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 1800)
    paid = collect_invoice(invoice)
    db.session.commit()
    intent = stripe_get(localstripe, f"payment_intents/{paid.payment.stripe_id}")
    charge = (
        intent["latest_charge"]
        if isinstance(intent["latest_charge"], dict)
        else stripe_get(localstripe, f"charges/{intent['latest_charge']}")
    )
    refunded = {**charge, "payment_intent": intent["id"], "amount_refunded": 1800, "refunded": True}

    assert deliver(client, event("charge.refunded", refunded)).status_code == 200

    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.REFUNDED


def test_processing_event_moves_an_open_invoice_to_processing(client):
    user = make_user()
    invoice = finalized_invoice(user.account.id, 700)
    db.session.add(
        Payment(
            invoice_id=invoice.id,
            attempt=1,
            stripe_id="pi_proc",
            amount_minor=700,
            currency="EUR",
            status="requires_confirmation",
        )
    )
    body = event(
        "payment_intent.processing",
        {"id": "pi_proc", "object": "payment_intent", "status": "processing", "amount": 700, "metadata": {}},
    )
    assert deliver(client, body).status_code == 200
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PROCESSING


def test_a_late_failure_never_undoes_a_success(client):
    user = make_user()
    invoice = finalized_invoice(user.account.id, 700)
    db.session.add(
        Payment(
            invoice_id=invoice.id, attempt=1, stripe_id="pi_ok", amount_minor=700, currency="EUR", status="succeeded"
        )
    )
    invoice.payment_state = PaymentState.PAID
    body = event(
        "payment_intent.payment_failed",
        {"id": "pi_ok", "object": "payment_intent", "status": "requires_payment_method", "amount": 700, "metadata": {}},
    )
    assert deliver(client, body).status_code == 200
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID
    assert db.session.get(Dunning, invoice.id) is None


def test_a_payment_intent_whose_row_was_lost_is_recorded_from_its_webhook(client, localstripe):
    # Stripe created and charged the intent, then our process died before committing its Payment row.
    user = make_user()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 1300)
    db.session.commit()
    method = payment_services.active_payment_method(user.account.id)
    customer = payment_services.stripe_customer_of(user.account.id)
    created = requests.post(
        f"{localstripe.url}/v1/payment_intents",
        auth=(API_KEY, ""),
        timeout=10,
        data={
            "amount": 1300,
            "currency": "eur",
            "customer": customer.stripe_customer_id,
            "payment_method": method.stripe_payment_method_id,
            "confirm": "true",
            "off_session": "true",
            "metadata[invoice_number]": invoice.number,
            "metadata[account_id]": str(user.account.id),
            "metadata[attempt]": "1",
        },
    ).json()
    assert created["status"] == "succeeded"

    assert deliver(client, event("payment_intent.succeeded", created)).status_code == 200

    payment = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).one()
    assert (payment.attempt, payment.stripe_id, payment.status, payment.amount_minor) == (
        1,
        created["id"],
        "succeeded",
        1300,
    )
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID
    # ...and the retried collection of attempt 1 sees it instead of charging again.
    assert collect_invoice(invoice, attempt=1).outcome == Outcome.ALREADY


def test_without_a_configured_secret_nothing_is_accepted(client, stripe_app):
    stripe_app.config["STRIPE_WEBHOOK_SECRET"] = None
    response = deliver(client, event("payment_intent.succeeded", {"id": "pi_x"}))
    assert response.status_code == 503
    assert db.session.scalars(select(StripeEvent)).all() == []


def test_a_credit_note_issued_while_the_sepa_debit_is_under_way_is_refunded_when_it_settles(
    client, localstripe, webhook_catcher, mailbox, monkeypatch
):
    from app.billing.documents.delivery import refund_due
    from app.billing.models import InvoiceKind

    user, invoice, result = _sepa_debit_under_way(localstripe, monkeypatch)
    note = finalized_invoice(user.account.id, -1000, kind=InvoiceKind.CREDIT_NOTE, credits=invoice)
    db.session.commit()
    assert refund_due(note) == "pending"  # nothing to refund yet: the debit is under way
    assert db.session.scalar(select(Payment).where(Payment.invoice_id == note.id)) is None

    body, signature = caught(webhook_catcher, "payment_intent.succeeded", result.payment.stripe_id)
    assert deliver(client, body, signature).status_code == 200

    refund = db.session.scalar(select(Payment).where(Payment.invoice_id == note.id))
    assert (refund.kind, refund.amount_minor) == ("refund", 1000)  # the credit note's total, back to the driver
    # The debit was for the full total: more than due after the credit note, but the credit note gives that
    # back, so it is not an overpayment for finance to look at.
    assert db.session.get(Payment, result.payment.id).review is None
    assert stripe_get(localstripe, f"refunds/{refund.stripe_id}")["amount"] == 1000
    again = deliver(client, body, signature)  # the same event again: acknowledged, nothing refunded twice
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert len(db.session.scalars(select(Payment).where(Payment.invoice_id == note.id)).all()) == 1
