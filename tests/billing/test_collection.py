"""Collecting invoices through Stripe PaymentIntents, against the localstripe emulator (real HTTP)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from sqlalchemy import select

from app.accounts.services import send_pending
from app.billing.collection import dunning, outages
from app.billing.collection import services as collection
from app.billing.collection.refunds import refund_credit_note
from app.billing.collection.services import Outcome, collect_invoice
from app.billing.models import CollectionOutage, Dunning, InvoiceKind, Payment, PaymentState
from app.extensions import db
from app.payments import services as payment_services
from app.payments.stripe_client import reset_stripe_client
from app.roaming.send.authorization import Standing, account_standing
from tests.billing.conftest import (
    DECLINED_ON_CHARGE,
    finalized_invoice,
    intents_for,
    save_method,
    sepa_answers_processing,
    stripe_get,
    wait_for_intent,
)
from tests.factories import make_user
from tests.payments import stripe_js
from tests.payments.emulator import API_KEY

pytestmark = pytest.mark.usefixtures("stripe_app")

NOW = dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC)


def driver(email: str | None = None):  # type: ignore[no-untyped-def]
    return make_user(email=email)


def test_card_4242_is_charged_and_the_invoice_paid(db_session, localstripe, mailbox):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 1244)

    result = collect_invoice(invoice, attempt=1, now=NOW)
    db.session.commit()
    send_pending(result.emails)

    assert result.outcome == Outcome.PAID
    assert invoice.payment_state == PaymentState.PAID and invoice.paid_at == NOW
    payment = result.payment
    assert (payment.attempt, payment.kind, payment.status, payment.amount_minor, payment.currency) == (
        1,
        "charge",
        "succeeded",
        1244,
        "EUR",
    )
    intent = stripe_get(localstripe, f"payment_intents/{payment.stripe_id}")
    assert (intent["amount"], intent["currency"], intent["status"]) == (1244, "eur", "succeeded")
    assert intent["metadata"] == {
        "invoice_number": invoice.number,
        "invoice_id": str(invoice.id),
        "account_id": str(user.account.id),
        "attempt": "1",
    }
    assert intent["customer"] == payment_services.stripe_customer_of(user.account.id).stripe_customer_id
    receipt = mailbox.to(user.email)[-1]
    assert receipt["Subject"] == "We received your payment"
    body = receipt.get_body(("plain",)).get_content()
    assert invoice.number in body and "12.44" in body
    assert db.session.get(Dunning, invoice.id) is None


def test_a_declined_card_fails_without_raising_and_starts_dunning(db_session, localstripe, mailbox):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card(DECLINED_ON_CHARGE))
    invoice = finalized_invoice(user.account.id, 2500)

    result = collect_invoice(invoice, attempt=1, now=NOW)
    db.session.commit()
    send_pending(result.emails)

    assert result.outcome == Outcome.FAILED
    assert "declined" in result.message.lower()
    assert invoice.payment_state == PaymentState.FAILED and invoice.paid_at is None
    assert (result.payment.status, result.payment.attempt) == ("requires_payment_method", 1)
    schedule = db.session.get(Dunning, invoice.id)
    assert (schedule.stage, schedule.next_attempt_at) == (0, NOW + dt.timedelta(days=3))
    mail = mailbox.to(user.email)[-1]
    assert mail["Subject"] == "Your payment did not go through"
    assert invoice.number in mail.get_body(("plain",)).get_content()


def test_card_4000000000000002_cannot_even_be_saved_so_collection_fails_for_lack_of_a_method(db_session, localstripe):
    # localstripe declines this card when the SetupIntent attaches it (real Stripe declines it on every use).
    user = driver()
    info = payment_services.create_setup_intent(user.account, "card")
    refused = stripe_js.confirm_setup_intent(localstripe, info.client_secret, stripe_js.card(stripe_js.VISA_DECLINED))
    assert refused.status_code == 402
    with pytest.raises(payment_services.PaymentError):
        payment_services.record_setup_intent_result(user.account, info.id)
    invoice = finalized_invoice(user.account.id, 990)

    result = collect_invoice(invoice, attempt=1, now=NOW)

    assert result.outcome == Outcome.FAILED
    assert result.message == collection.NO_METHOD_MESSAGE
    assert (result.payment.status, result.payment.stripe_id) == ("no_payment_method", None)
    assert invoice.payment_state == PaymentState.FAILED
    assert db.session.get(Dunning, invoice.id).next_attempt_at == NOW + dt.timedelta(days=3)


def test_sepa_debit_is_processing_until_the_bank_settles(db_session, localstripe, monkeypatch):
    user = driver()
    save_method(user.account, localstripe, stripe_js.sepa(stripe_js.IBAN_OK, email=user.email))
    invoice = finalized_invoice(user.account.id, 3100)
    sepa_answers_processing(monkeypatch)

    result = collect_invoice(invoice, attempt=1, now=NOW)

    assert result.outcome == Outcome.PROCESSING
    assert invoice.payment_state == PaymentState.PROCESSING
    assert result.payment.status == "processing"
    assert (
        intents_for(localstripe, invoice.number)[0]["payment_method"]
        == payment_services.active_payment_method(user.account.id).stripe_payment_method_id
    )
    # Settled later; our state changes with the webhook (tests/billing/test_webhooks.py).
    # A SEPA debit under way is not collected again.
    again = collect_invoice(invoice, now=NOW)
    assert again.outcome == Outcome.ALREADY and again.payment is result.payment
    assert len(intents_for(localstripe, invoice.number)) == 1


def test_a_failing_sepa_debit_is_processing_at_first(db_session, localstripe):
    # localstripe's failing IBAN behaves like real Stripe: processing now, payment_failed a moment later.
    user = driver()
    save_method(user.account, localstripe, stripe_js.sepa(stripe_js.IBAN_FAILS, email=user.email))
    invoice = finalized_invoice(user.account.id, 3100)
    result = collect_invoice(invoice, attempt=1, now=NOW)
    assert result.outcome == Outcome.PROCESSING and invoice.payment_state == PaymentState.PROCESSING
    assert (
        wait_for_intent(localstripe, result.payment.stripe_id, "requires_payment_method")["status"]
        == "requires_payment_method"
    )


def test_collecting_the_same_attempt_twice_makes_one_payment_and_one_payment_intent(db_session, localstripe):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card(DECLINED_ON_CHARGE))
    invoice = finalized_invoice(user.account.id, 1500)

    first = collect_invoice(invoice, attempt=1, now=NOW)
    db.session.commit()
    second = collect_invoice(invoice, attempt=1, now=NOW)

    assert first.outcome == Outcome.FAILED and second.outcome == Outcome.ALREADY
    assert second.payment is first.payment
    rows = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert len(rows) == 1
    # localstripe ignores idempotency keys: only our own guard kept Stripe from being asked twice.
    assert len(intents_for(localstripe, invoice.number)) == 1


def test_a_paid_invoice_is_never_charged_again(db_session, localstripe):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 700)
    assert collect_invoice(invoice, now=NOW).outcome == Outcome.PAID
    again = collect_invoice(invoice, now=NOW)
    assert again.outcome == Outcome.ALREADY
    assert len(intents_for(localstripe, invoice.number)) == 1


def test_the_idempotency_key_is_invoice_number_and_attempt(db_session, localstripe, monkeypatch):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 800)
    seen = []
    real_request = requests.Session.request

    def spy(self, method, url, **kwargs):  # type: ignore[no-untyped-def]
        if url.endswith("/v1/payment_intents") and method.upper() == "POST":
            seen.append(kwargs.get("headers", {}).get("Idempotency-Key"))
        return real_request(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    collect_invoice(invoice, now=NOW)
    assert seen == [f"emsp-invoice-{invoice.number}-attempt-1"]


def test_zero_and_negative_totals_are_not_due(db_session, localstripe):
    account = driver().account
    zero = finalized_invoice(account.id, 0)
    zero.payment_state = PaymentState.OPEN
    assert collect_invoice(zero).outcome == Outcome.NOT_DUE
    assert zero.payment_state == PaymentState.NOT_DUE
    negative = finalized_invoice(account.id, -500, period="2026-09")
    assert collect_invoice(negative).outcome == Outcome.NOT_DUE
    assert db.session.scalars(select(Payment)).all() == []


def test_a_card_that_needs_3ds_fails_off_session(db_session, localstripe):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card(stripe_js.VISA_3DS))
    invoice = finalized_invoice(user.account.id, 1200)
    result = collect_invoice(invoice, attempt=1, now=NOW)
    assert result.outcome == Outcome.FAILED
    assert result.message == collection.AUTH_REQUIRED_MESSAGE
    assert invoice.payment_state == PaymentState.FAILED
    assert db.session.get(Dunning, invoice.id) is not None


def test_only_finalized_invoices_are_collected(db_session, localstripe):
    account = driver().account
    invoice = finalized_invoice(account.id, 100)
    invoice.status = invoice.status.__class__.DRAFT
    with pytest.raises(collection.CollectionError):
        collect_invoice(invoice)


def test_stripe_unreachable_is_an_error_outcome_that_records_only_the_outage(db_session, localstripe, stripe_app):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 1000)
    stripe_app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # discard port: connection refused
    reset_stripe_client(stripe_app)
    result = collect_invoice(invoice, attempt=1, now=NOW)
    assert result.outcome == Outcome.ERROR and result.attempt == 1
    assert invoice.payment_state == PaymentState.OPEN
    assert db.session.scalars(select(Payment)).all() == []
    assert db.session.get(Dunning, invoice.id) is None
    # What finance sees, and when the resume job tries again.
    outage = db.session.get(CollectionOutage, (invoice.id, 1))
    assert (outage.since, outage.tries, outage.next_try_at, outage.resolved_at) == (
        NOW,
        1,
        NOW + dt.timedelta(minutes=5),
        None,
    )
    assert outage.reason.startswith("Stripe could not be reached") and "Connection refused" in outage.reason


def test_an_attempt_that_met_an_outage_is_resumed_by_the_next_collection_not_replaced(
    db_session, localstripe, stripe_app
):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 1000)
    working = stripe_app.config["STRIPE_API_BASE"]
    stripe_app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"
    reset_stripe_client(stripe_app)
    assert collect_invoice(invoice, attempt=1, now=NOW).outcome == Outcome.ERROR
    stripe_app.config["STRIPE_API_BASE"] = working
    reset_stripe_client(stripe_app)

    # "Pay now" asks for a new attempt; the one left waiting is taken instead (its PaymentIntent may exist).
    paid = collection.pay_open_balance(user.account.id)

    assert paid.status == "paid"
    assert [(p.attempt, p.status) for p in collection.payments_of(invoice)] == [(1, "succeeded")]
    assert [i["metadata"]["attempt"] for i in intents_for(localstripe, invoice.number)] == ["1"]
    assert db.session.get(CollectionOutage, (invoice.id, 1)).resolved_at is not None


def test_the_payment_intent_a_lost_try_made_is_found_by_its_metadata_and_recorded(db_session, localstripe, monkeypatch):
    monkeypatch.setattr(outages, "PAGE_SIZE", 1)  # the customer's list is read page by page to its end
    user = driver()
    method = save_method(user.account, localstripe, stripe_js.card(DECLINED_ON_CHARGE))
    customer = payment_services.stripe_customer_of(user.account.id).stripe_customer_id
    invoice = finalized_invoice(user.account.id, 1500)
    other = finalized_invoice(user.account.id, 900, period="2026-09")

    def lost_try(of, attempt):  # type: ignore[no-untyped-def]
        """What a try whose answer never came made at Stripe: a confirmed PaymentIntent with our metadata."""
        answer = requests.post(
            f"{localstripe.url}/v1/payment_intents",
            auth=(API_KEY, ""),
            timeout=10,
            data={
                "amount": of.total_minor,
                "currency": "eur",
                "customer": customer,
                "payment_method": method.stripe_payment_method_id,
                "confirm": "true",
                "off_session": "true",
                "metadata[invoice_number]": of.number,
                "metadata[invoice_id]": str(of.id),
                "metadata[account_id]": str(of.account_id),
                "metadata[attempt]": str(attempt),
            },
        )
        assert answer.status_code == 402  # declined, as this card always is; the PaymentIntent stays
        [made] = [i["id"] for i in intents_for(localstripe, of.number) if i["metadata"]["attempt"] == str(attempt)]
        return made

    lost_try(other, 1)  # the customer's other PaymentIntents are not this attempt's
    lost_try(invoice, 2)
    made = lost_try(invoice, 1)
    outages.note_outage(invoice.id, 1, "no answer", NOW)

    result = collect_invoice(invoice, now=NOW + dt.timedelta(minutes=5))

    assert result.outcome == Outcome.FAILED and result.attempt == 1  # declined: dunning starts
    assert (result.payment.stripe_id, result.payment.status, result.payment.amount_minor) == (
        made,
        "requires_payment_method",
        1500,
    )
    assert db.session.get(Dunning, invoice.id) is not None
    assert len(intents_for(localstripe, invoice.number)) == 2  # nothing new made


def test_a_credit_note_on_a_paid_invoice_is_refunded_once(db_session, localstripe):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 2000)
    paid = collect_invoice(invoice, now=NOW)
    note = finalized_invoice(user.account.id, -500, kind=InvoiceKind.CREDIT_NOTE, credits=invoice)

    refund = refund_credit_note(note)
    again = refund_credit_note(note)

    assert (refund.outcome, refund.amount_minor) == ("refunded", 500)
    assert (refund.payment.kind, refund.payment.invoice_id, refund.payment.attempt) == ("refund", note.id, 1)
    assert again.outcome == "already" and again.payment is refund.payment
    at_stripe = stripe_get(localstripe, f"refunds/{refund.payment.stripe_id}")
    assert at_stripe["amount"] == 500 and at_stripe["status"] == "succeeded"
    charge = stripe_get(localstripe, f"payment_intents/{paid.payment.stripe_id}")["latest_charge"]
    charge_id = charge if isinstance(charge, str) else charge["id"]
    assert stripe_get(localstripe, f"charges/{charge_id}")["amount_refunded"] == 500
    assert invoice.payment_state == PaymentState.PAID  # partly refunded

    rest = finalized_invoice(user.account.id, -1500, kind=InvoiceKind.CREDIT_NOTE, credits=invoice)
    assert refund_credit_note(rest).amount_minor == 1500
    assert invoice.payment_state == PaymentState.REFUNDED


def test_a_credit_note_on_an_unpaid_invoice_lowers_what_is_collected(db_session, localstripe):
    user = driver()
    save_method(user.account, localstripe, stripe_js.card())
    invoice = finalized_invoice(user.account.id, 2000)
    note = finalized_invoice(user.account.id, -300, kind=InvoiceKind.CREDIT_NOTE, credits=invoice)

    assert refund_credit_note(note).outcome == "not_paid"
    assert collection.amount_due_minor(invoice) == 1700
    result = collect_invoice(invoice)
    assert result.outcome == Outcome.PAID and result.payment.amount_minor == 1700
    assert stripe_get(localstripe, f"payment_intents/{result.payment.stripe_id}")["amount"] == 1700
    # Already deducted before payment: nothing more goes back.
    assert refund_credit_note(note).outcome == "nothing_to_refund"


def test_a_fully_credited_unpaid_invoice_is_no_longer_due(db_session, localstripe):
    account = driver().account
    invoice = finalized_invoice(account.id, 900)
    invoice.payment_state = PaymentState.FAILED
    note = finalized_invoice(account.id, -900, kind=InvoiceKind.CREDIT_NOTE, credits=invoice)
    assert refund_credit_note(note).outcome == "not_paid"
    assert invoice.payment_state == PaymentState.NOT_DUE


def test_unpaid_overdue_invoices_put_the_account_out_of_good_standing(db_session, localstripe):
    account = driver().account
    assert account_standing(account.id) == Standing.GOOD
    today = dt.date.today()
    invoice = finalized_invoice(account.id, 1000, issue_date=today - dt.timedelta(days=20))
    invoice.payment_state = PaymentState.PROCESSING  # a debit under way is not held against the driver
    db.session.flush()
    assert account_standing(account.id) == Standing.GOOD
    invoice.payment_state = PaymentState.FAILED
    db.session.flush()
    assert dunning.has_unpaid_overdue(account.id)
    assert account_standing(account.id) == Standing.NO_CREDIT
    invoice.payment_state = PaymentState.PAID
    not_yet_due = finalized_invoice(account.id, 1000, issue_date=today, period="2020-01")
    not_yet_due.payment_state = PaymentState.FAILED
    db.session.flush()
    assert account_standing(account.id) == Standing.GOOD
    not_yet_due.payment_state = PaymentState.UNCOLLECTIBLE
    db.session.flush()
    assert account_standing(account.id) == Standing.NO_CREDIT
