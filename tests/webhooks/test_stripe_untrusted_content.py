"""``POST /webhooks/stripe`` with *signed* events whose content must not be trusted (issue 12 item 4, from a
penetration test): a success counts for what it brought in, a malformed event is acknowledged and recorded as
ignored (never a 5xx that Stripe retries for days), a signature timed in the future is refused.

Events are built in Stripe's format and signed as Stripe signs them (``tests.webhooks.test_stripe.sign``).
"""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.accounts.models import Role
from app.billing import lookups
from app.billing.collection.dunning_runner import run_dunning
from app.billing.collection.services import (
    Outcome,
    amount_due_minor,
    collect_invoice,
    open_balance_minor,
    received_minor,
    received_of,
)
from app.billing.models import Dunning, Invoice, Payment, PaymentReview, PaymentState, StripeEvent
from app.extensions import db
from app.webhooks import views
from tests.billing.conftest import finalized_invoice, intents_for, save_method, stripe_get
from tests.factories import login, make_user
from tests.payments import stripe_js
from tests.payments.emulator import PUBLISHABLE_KEY
from tests.webhooks.test_stripe import deliver, event, sign

pytestmark = pytest.mark.usefixtures("stripe_app")


def succeeded(
    intent_id: str, amount: int, received: int | None = None, currency: str = "eur", metadata: dict | None = None
) -> dict:
    """A succeeded PaymentIntent as Stripe sends it (``amount`` asked, ``amount_received`` brought in)."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": "succeeded",
        "amount": amount,
        "amount_received": amount if received is None else received,
        "currency": currency,
        "metadata": metadata or {},
    }


def debit_under_way(total_minor: int = 1398, intent_id: str | None = None):  # type: ignore[no-untyped-def]
    """A driver whose invoice is being debited (our attempt 1 is ``processing``, as with SEPA)."""
    user = make_user()
    invoice = finalized_invoice(user.account.id, total_minor)
    payment = Payment(
        invoice_id=invoice.id,
        attempt=1,
        stripe_id=intent_id or f"pi_{time.time_ns()}",
        amount_minor=total_minor,
        currency="EUR",
        status="processing",
    )
    db.session.add(payment)
    invoice.payment_state = PaymentState.PROCESSING
    db.session.commit()
    return user, invoice, payment


# --- what a success brought in ---------------------------------------------------------------------------------


def test_a_signed_one_cent_success_of_a_1398_invoice_is_a_partial_payment(client, localstripe, mailbox):
    user, invoice, payment = debit_under_way(1398)

    response = deliver(client, event("payment_intent.succeeded", succeeded(payment.stripe_id, 1398, received=1)))

    assert response.status_code == 200
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.FAILED and invoice.paid_at is None  # not paid
    payment = db.session.get(Payment, payment.id)
    assert (payment.status, payment.amount_received_minor, payment.received_currency, payment.review) == (
        "succeeded",
        1,
        "EUR",
        PaymentReview.UNDERPAID,
    )
    assert received_minor(invoice) == 1
    assert amount_due_minor(invoice) == 1397
    assert open_balance_minor(user.account.id) == {"EUR": 1397}
    # Dunning goes on for the rest; the driver is told what is still due.
    schedule = db.session.get(Dunning, invoice.id)
    assert schedule is not None and schedule.next_attempt_at is not None
    mails = mailbox.to(user.email)
    assert [mail["Subject"] for mail in mails] == ["Your payment did not go through"]
    assert "13.97" in mails[0].get_content()
    # The driver's balance shows what is left and what was received.
    login(client, user)
    page = client.get("/balance").get_data(as_text=True)
    assert "€13.97" in page and "€0.01 already received" in page
    # Finance sees it among the payments to review and on the invoice.
    assert [(row[0].id, row[1].id) for row in lookups.payments_to_review()] == [(payment.id, invoice.id)]

    # The next dunning retry collects the rest (1397) with the saved card, and the invoice is paid.
    save_method(user.account, localstripe, stripe_js.card())
    report = run_dunning(schedule.next_attempt_at)
    assert report.paid == 1
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID
    assert [intent["amount"] for intent in intents_for(localstripe, invoice.number)] == [1397]
    assert received_minor(invoice) == 1398


def test_a_one_cent_success_for_an_attempt_we_do_not_know_is_a_partial_payment_too(client):
    # The penetration test's form: no attempt of ours, only our metadata on a PaymentIntent of 1 cent.
    user = make_user()
    invoice = finalized_invoice(user.account.id, 1398)
    db.session.commit()
    metadata = {"invoice_number": invoice.number, "account_id": str(user.account.id), "attempt": "1"}

    response = deliver(client, event("payment_intent.succeeded", succeeded("pi_forged_cent", 1, metadata=metadata)))

    assert response.status_code == 200
    db.session.refresh(invoice)
    assert invoice.payment_state != PaymentState.PAID and invoice.paid_at is None
    payment = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).one()
    assert (payment.amount_received_minor, payment.review) == (1, PaymentReview.UNDERPAID)
    assert amount_due_minor(invoice) == 1397


def test_a_success_in_another_currency_never_pays_the_invoice_and_is_flagged(client, mailbox):
    user, invoice, payment = debit_under_way(1398)

    response = deliver(client, event("payment_intent.succeeded", succeeded(payment.stripe_id, 1398, currency="usd")))

    assert response.status_code == 200
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.FAILED and invoice.paid_at is None
    payment = db.session.get(Payment, payment.id)
    assert (payment.amount_received_minor, payment.received_currency, payment.review) == (
        1398,
        "USD",
        PaymentReview.CURRENCY_MISMATCH,
    )
    assert amount_due_minor(invoice) == 1398  # nothing counted
    assert "We received your payment" not in [mail["Subject"] for mail in mailbox.to(user.email)]
    assert [row[0].id for row in lookups.payments_to_review()] == [payment.id]


def test_an_overpayment_pays_the_invoice_and_is_flagged_for_finance(client):
    _, invoice, payment = debit_under_way(1398)

    response = deliver(client, event("payment_intent.succeeded", succeeded(payment.stripe_id, 2000)))

    assert response.status_code == 200
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID
    payment = db.session.get(Payment, payment.id)
    assert (payment.amount_received_minor, payment.review) == (2000, PaymentReview.OVERPAID)
    assert [row[0].id for row in lookups.payments_to_review()] == [payment.id]


def test_an_exact_payment_is_not_flagged(client):
    _, invoice, payment = debit_under_way(1398)

    assert deliver(client, event("payment_intent.succeeded", succeeded(payment.stripe_id, 1398))).status_code == 200

    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID
    assert db.session.get(Payment, payment.id).review is None
    assert lookups.payments_to_review() == []


def test_finance_sees_partial_payments_and_ignored_events(client):
    _, invoice, payment = debit_under_way(1398)
    deliver(client, event("payment_intent.succeeded", succeeded(payment.stripe_id, 1398, received=1)))
    deliver(client, event("payment_intent.succeeded", {"id": 42}, event_id="evt_finance_sees_it"))
    login(client, make_user(Role.FINANCE))

    page = client.get("/backoffice/finance/payments").get_data(as_text=True)
    assert invoice.number in page and "Less than due: the rest is still due" in page
    assert "evt_finance_sees_it" in page and "the PaymentIntent has no usable id" in page
    detail = client.get(f"/backoffice/finance/invoices/{invoice.number}").get_data(as_text=True)
    assert "received €0.01" in detail and "Still due: €13.97" in detail


# --- signed but malformed: acknowledged, recorded, nothing changed ---------------------------------------------

MALFORMED = {
    "no data": lambda pi, inv: {"type": "payment_intent.succeeded"},
    "object is text": lambda pi, inv: {"type": "payment_intent.succeeded", "data": {"object": pi}},
    "amount as text": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {"object": {**succeeded(pi, 1398), "amount": "1398", "amount_received": "1398"}},
    },
    "amount as float": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {"object": {**succeeded(pi, 1398), "amount_received": 1398.0}},
    },
    "amount out of bounds": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {"object": {**succeeded(pi, 1398), "amount_received": 10**15}},
    },
    "no currency": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {"object": {key: value for key, value in succeeded(pi, 1398).items() if key != "currency"}},
    },
    "no amount at all": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                key: value for key, value in succeeded(pi, 1398).items() if key not in ("amount", "amount_received")
            }
        },
    },
    "status says otherwise": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {"object": {**succeeded(pi, 1398), "status": "requires_payment_method"}},
    },
    "metadata is a list": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {"object": {**succeeded("pi_other", 1398), "metadata": ["invoice_number", inv.number]}},
    },
    "unknown invoice in metadata": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {
            "object": succeeded(
                "pi_other",
                1398,
                metadata={"invoice_number": "INV-2099-000001", "attempt": "1", "account_id": str(inv.account_id)},
            )
        },
    },
    "another account in metadata": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {
            "object": succeeded(
                "pi_other",
                1398,
                metadata={"invoice_number": inv.number, "attempt": "2", "account_id": str(inv.account_id + 1000)},
            )
        },
    },
    "attempt not a number": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {
            "object": succeeded(
                "pi_other",
                1398,
                metadata={"invoice_number": inv.number, "attempt": "²", "account_id": str(inv.account_id)},
            )
        },
    },
    "attempt too large": lambda pi, inv: {
        "type": "payment_intent.succeeded",
        "data": {
            "object": succeeded(
                "pi_other",
                1398,
                metadata={"invoice_number": inv.number, "attempt": "99999999999", "account_id": str(inv.account_id)},
            )
        },
    },
    "last_payment_error is text": lambda pi, inv: {
        "type": "payment_intent.payment_failed",
        "data": {
            "object": {
                "id": pi,
                "object": "payment_intent",
                "status": "requires_payment_method",
                "last_payment_error": "no",
            }
        },
    },
    "refund of an unknown charge": lambda pi, inv: {
        "type": "charge.refunded",
        "data": {
            "object": {
                "id": "ch_x",
                "object": "charge",
                "payment_intent": "pi_nobody",
                "amount": 1398,
                "refunded": True,
            }
        },
    },
    "refund amount as text": lambda pi, inv: {
        "type": "charge.refunded",
        "data": {
            "object": {
                "id": "ch_x",
                "object": "charge",
                "payment_intent": pi,
                "amount": "1398",
                "amount_refunded": "1398",
            }
        },
    },
    "no type": lambda pi, inv: {"data": {"object": succeeded(pi, 1398)}},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_signed_event_is_acknowledged_recorded_and_changes_nothing(client, mailbox, caplog, case):
    user, invoice, payment = debit_under_way(1398)
    event_id = f"evt_malformed_{time.time_ns()}"
    body = json.dumps({"id": event_id, "object": "event", **MALFORMED[case](payment.stripe_id, invoice)}).encode()

    with caplog.at_level(logging.WARNING, logger="app.webhooks.views"):
        response = deliver(client, body)

    assert response.status_code == 200, response.get_data(as_text=True)
    reason = response.get_json()["ignored"]
    assert reason
    assert event_id in caplog.text and reason in caplog.text
    record = db.session.get(StripeEvent, event_id)
    assert record is not None and record.ignored_reason == reason
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PROCESSING and invoice.paid_at is None
    payment = db.session.get(Payment, payment.id)
    assert (payment.status, payment.amount_received_minor, payment.review) == ("processing", None, None)
    assert db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all() == [payment]
    assert db.session.get(Dunning, invoice.id) is None and mailbox.to(user.email) == []
    # Stripe's retry of the same event is a duplicate, still acknowledged.
    assert deliver(client, body).get_json() == {"received": True, "duplicate": True}


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[1, 2, 3]",
        b'{"type": "payment_intent.succeeded"}',
        b'{"id": 12, "type": "payment_intent.succeeded"}',
        b'"evt_1"',
    ],
)
def test_a_signed_body_without_a_usable_event_id_is_acknowledged_and_logged(client, caplog, body):
    with caplog.at_level(logging.WARNING, logger="app.webhooks.views"):
        response = deliver(client, body)

    assert response.status_code == 200
    assert response.get_json()["ignored"] in caplog.text
    assert db.session.scalars(select(StripeEvent)).all() == []


def test_a_success_for_a_refund_row_is_ignored(client):
    # A PaymentIntent event that names the Stripe id of one of our refunds: not a charge, nothing to pay.
    user = make_user()
    invoice = finalized_invoice(user.account.id, 1398)
    payment = Payment(
        invoice_id=invoice.id,
        attempt=1,
        kind="refund",
        stripe_id="re_ours",
        amount_minor=100,
        currency="EUR",
        status="succeeded",
    )
    db.session.add(payment)
    db.session.commit()

    response = deliver(client, event("payment_intent.succeeded", succeeded("re_ours", 1398)))

    assert response.status_code == 200 and "not a charge" in response.get_json()["ignored"]
    assert db.session.get(Invoice, invoice.id).payment_state == PaymentState.OPEN


def test_a_type_we_do_not_handle_is_recorded_as_routine(client):
    response = deliver(client, event("customer.created", {"id": "cus_x", "object": "customer"}, event_id="evt_cus"))
    assert response.status_code == 200
    assert db.session.get(StripeEvent, "evt_cus").ignored_reason == StripeEvent.TYPE_NOT_HANDLED
    assert lookups.ignored_stripe_events() == []  # not listed for staff


# --- the signature's time -------------------------------------------------------------------------------------


def test_a_signature_a_little_ahead_of_our_clock_is_accepted(client):
    # Clocks drift: within the tolerance (five minutes) either way is fine.
    _, invoice, payment = debit_under_way(700)
    body = event("payment_intent.succeeded", succeeded(payment.stripe_id, 700))

    response = deliver(client, body, sign(body, timestamp=int(time.time()) + 60))

    assert response.status_code == 200
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID


def test_a_signature_timed_beyond_the_tolerance_in_the_future_is_refused(client):
    _, invoice, payment = debit_under_way(700)
    body = event("payment_intent.succeeded", succeeded(payment.stripe_id, 700))

    response = deliver(client, body, sign(body, timestamp=int(time.time()) + 301 + 5))

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PROCESSING
    assert db.session.scalars(select(StripeEvent)).all() == []


def test_a_synchronous_success_is_counted_for_what_stripe_says_it_received(client, localstripe):
    # localstripe's PaymentIntents carry amount and currency but no amount_received: the amount is used then.
    user = make_user()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 900)

    result = collect_invoice(invoice, attempt=1)
    intent = stripe_get(localstripe, f"payment_intents/{result.payment.stripe_id}")
    assert received_of(intent).amount_minor == 900 and received_of(intent).currency == "EUR"
    assert result.payment.amount_received_minor == 900 and result.payment.review is None


def test_content_that_trips_a_handler_anyway_is_acknowledged_and_undone(client, monkeypatch):
    # The checks should catch bad content first; if some still raises a data error deep in a handler, what the
    # handler did is undone and the event is recorded as ignored, not answered 500 for Stripe to retry.
    _, invoice, payment = debit_under_way(700)

    def trips(payment, status, **kwargs):  # type: ignore[no-untyped-def]
        payment.status = status  # a change that must be undone
        db.session.flush()
        raise TypeError("unsupported operand")

    monkeypatch.setattr(views, "apply_status", trips)
    body = event("payment_intent.succeeded", succeeded(payment.stripe_id, 700), event_id="evt_trips")

    response = deliver(client, body)

    assert response.status_code == 200
    assert response.get_json()["ignored"] == "unusable content (TypeError)"
    assert db.session.get(StripeEvent, "evt_trips").ignored_reason == "unusable content (TypeError)"
    assert db.session.get(Payment, payment.id).status == "processing"
    assert db.session.get(Invoice, invoice.id).payment_state == PaymentState.PROCESSING


def test_a_failure_on_our_side_still_answers_500_so_stripe_retries(client, monkeypatch):
    _, _, payment = debit_under_way(700)

    def database_gone(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("UPDATE billing_invoices", {}, Exception("server closed the connection"))

    monkeypatch.setattr(views, "apply_status", database_gone)
    body = event("payment_intent.succeeded", succeeded(payment.stripe_id, 700), event_id="evt_db_gone")

    response = deliver(client, body)

    assert response.status_code == 500
    db.session.rollback()  # what the end of the request does in production (the test shares its session)
    assert db.session.get(StripeEvent, "evt_db_gone") is None  # not recorded: Stripe's retry is handled


def test_a_waiting_attempt_the_driver_completed_after_all_is_counted_not_charged_again(client, localstripe):
    # A new attempt cancels one left waiting for 3-D Secure; when Stripe says it succeeded meanwhile, it is
    # counted for what it brought in and nothing is charged a second time.
    user = make_user()
    save_method(user.account, localstripe, stripe_js.card(stripe_js.VISA_3DS))
    invoice = finalized_invoice(user.account.id, 1500)
    first = collect_invoice(invoice, on_session=True)
    db.session.commit()
    assert first.outcome == Outcome.REQUIRES_ACTION
    requests.post(
        f"{localstripe.url}/v1/payment_intents/{first.payment.stripe_id}/_authenticate?success=true",
        json={"key": PUBLISHABLE_KEY, "client_secret": first.client_secret},
        timeout=10,
    ).raise_for_status()

    second = collect_invoice(invoice, on_session=True)

    assert second.outcome == Outcome.PAID
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID
    assert len(intents_for(localstripe, invoice.number)) == 1
    payment = db.session.get(Payment, first.payment.id)
    assert (payment.status, payment.amount_received_minor, payment.review) == ("succeeded", 1500, None)
