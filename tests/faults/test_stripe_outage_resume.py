"""Fault: collection after a Stripe outage resumes by itself and never charges twice (issue 17, "Faults").

The same emulator and proxy as ``test_stripe_outage.py`` (``slow``: Stripe charges, its answer is lost; ``down``:
nothing reaches Stripe; ``up``). The attempt that met the outage is resumed with its number and key, and first
looks for the PaymentIntent the lost try made, through the metadata collection puts on it
(``app/billing/collection/outages.py``). Here:

- a credit note issued during the outage: the amount due changes, so Stripe would refuse the key with the new
  amount (``IdempotencyError``); the invoice is charged once, for what is due, or the over-payment refunded;
- the same when the outage itself was not recorded (a worker died before its commit): Stripe's refusal of the key
  leads to the same look-up;
- a retry more than 24 hours later, when Stripe has forgotten the key (the emulator is told to forget): the
  look-up finds the charge, nothing is created again;
- the periodic job (``billing.resume_collection``) collects after the outage without finance, with growing delays,
  and the run page says what waits for the payment provider meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
import requests
from sqlalchemy import select

from app.accounts.models import Account, Role
from app.billing.collection.dunning_runner import run_dunning
from app.billing.collection.outages import resume_delay
from app.billing.collection.refunds import refund_credit_note
from app.billing.collection.resume import resume_collection
from app.billing.collection.services import Outcome, amount_due_minor, collect_invoice
from app.billing.models import (
    CollectionOutage,
    Dunning,
    Invoice,
    InvoiceKind,
    InvoiceRun,
    Payment,
    PaymentState,
    RunStatus,
)
from app.extensions import db
from tests.billing.conftest import DECLINED_ON_CHARGE, finalized_invoice, intents_for, save_method, stripe_get
from tests.factories import login, make_user
from tests.faults import test_stripe_outage as outage_faults
from tests.payments import stripe_js
from tests.payments.emulator import API_KEY, LocalStripe

# The emulator keeping idempotent requests (one for this module) and the proxy in front of it, as in the slow/down test.
localstripe = outage_faults.localstripe
proxy = outage_faults.proxy
_switch = outage_faults._switch

T0 = dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
CREATE = ("POST", "/v1/payment_intents")


def _payer(localstripe: LocalStripe, card: str = stripe_js.VISA) -> Account:
    user = make_user()
    save_method(user.account, localstripe, stripe_js.card(card))
    return user.account


def _outage(invoice: Invoice, attempt: int) -> CollectionOutage | None:
    db.session.expire_all()
    return db.session.get(CollectionOutage, (invoice.id, attempt))


def _charges(localstripe: LocalStripe, invoice: Invoice) -> list[tuple[int, str, list[int]]]:
    """Each PaymentIntent Stripe holds for the invoice: amount, status and the amounts refunded on it."""
    return [
        (
            intent["amount"],
            intent["status"],
            [refund["amount"] for refund in stripe_get(localstripe, "refunds", payment_intent=intent["id"])["data"]],
        )
        for intent in intents_for(localstripe, invoice.number)
    ]


def _forget_keys(localstripe: LocalStripe) -> None:
    """A day goes by at Stripe: every idempotency key is forgotten."""
    requests.delete(f"{localstripe.url}/_config/idempotency_keys", timeout=10).raise_for_status()


@pytest.mark.parametrize("outage", ["down", "slow"])
def test_a_credit_note_issued_during_the_outage_is_charged_once_for_what_is_due(
    app, db_session, mailbox, localstripe, proxy, outage
):
    account = _payer(localstripe)
    invoice = finalized_invoice(account.id, 2000)
    db.session.commit()
    _switch(app, proxy, outage)
    assert collect_invoice(invoice, attempt=1, now=T0).outcome == Outcome.ERROR
    db.session.commit()
    proxy.settle()
    # Finance credits 5.00 meanwhile. As far as we know the invoice is unpaid: the credit lowers what is due.
    note = finalized_invoice(account.id, -500, kind=InvoiceKind.CREDIT_NOTE, credits=invoice)
    assert refund_credit_note(note, now=T0 + MINUTE).outcome == "not_paid"
    db.session.commit()
    assert amount_due_minor(invoice) == 1500

    _switch(app, proxy, "up")
    report = resume_collection(T0 + 5 * MINUTE).as_dict()

    db.session.expire_all()
    assert invoice.payment_state == PaymentState.PAID
    [(asked, status, refunded)] = _charges(localstripe, invoice)  # one PaymentIntent for the invoice
    assert status == "succeeded" and asked - sum(refunded) == 1500  # what the driver paid in the end: what is due
    [payment] = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert (payment.attempt, payment.status, payment.amount_received_minor, payment.review) == (
        1,
        "succeeded",
        asked,
        None,
    )
    up_creates = [c for c in proxy.creates_for(invoice.number) if c.state == "up"]
    if outage == "down":
        # Nothing reached Stripe: the look-up finds nothing, and the attempt is made now for what is due, with its
        # key (Stripe never saw it, so it takes the new amount).
        assert (asked, refunded) == (1500, [])
        assert [(c.key, c.replayed) for c in up_creates] == [(f"emsp-invoice-{invoice.number}-attempt-1", False)]
        assert report["paid"] == 1 and report["refunded"] == 0
    else:
        # Stripe charged 20.00 while we timed out: that PaymentIntent is the attempt's (no new create, which Stripe
        # would refuse: the key with another amount), and the credit note gives back the 5.00 paid too much.
        assert (asked, refunded) == (2000, [500])
        assert up_creates == []
        assert report["paid"] == 1 and report["refunded"] == 1
        refund = db.session.scalars(select(Payment).where(Payment.invoice_id == note.id)).one()
        assert (refund.kind, refund.amount_minor) == ("refund", 500)
    found = _outage(invoice, 1)
    assert found is not None and found.resolved_at == T0 + 5 * MINUTE and found.next_try_at is None
    assert report["finished"] == 1 and report["waiting"] == 0
    # Nothing left: the next runs of the job ask Stripe nothing.
    before = len(proxy.requests)
    assert not any(resume_collection(T0 + dt.timedelta(hours=3)).as_dict().values())
    assert len(proxy.requests) == before


def test_a_retry_stripe_refuses_for_other_parameters_finds_what_the_lost_try_charged(
    app, db_session, mailbox, localstripe, proxy, caplog
):
    caplog.set_level(logging.WARNING, logger="app.billing.collection")
    account = _payer(localstripe)
    invoice = finalized_invoice(account.id, 2000)
    db.session.commit()
    _switch(app, proxy, "slow")
    assert collect_invoice(invoice, attempt=1, now=T0).outcome == Outcome.ERROR
    db.session.rollback()  # the worker died before its commit: not even the outage is recorded
    proxy.settle()
    assert _outage(invoice, 1) is None
    note = finalized_invoice(account.id, -500, kind=InvoiceKind.CREDIT_NOTE, credits=invoice)
    assert refund_credit_note(note, now=T0 + MINUTE).outcome == "not_paid"
    db.session.commit()

    _switch(app, proxy, "up")
    # Delivery tries attempt 1 again, now for 15.00, with the key Stripe first saw with 20.00: Stripe refuses it.
    result = collect_invoice(invoice, attempt=1, now=T0 + dt.timedelta(hours=1))
    db.session.commit()

    assert result.outcome == Outcome.PAID
    assert any("tried before with other parameters" in record.getMessage() for record in caplog.records)
    [refused] = [c for c in proxy.creates_for(invoice.number) if c.state == "up"]
    assert refused.key == f"emsp-invoice-{invoice.number}-attempt-1" and not refused.replayed
    assert _charges(localstripe, invoice) == [(2000, "succeeded", [])]
    assert (result.payment.attempt, result.payment.amount_received_minor) == (1, 2000)
    found = _outage(invoice, 1)
    assert found is not None and "refused the retry" in found.reason
    assert found.resolved_at == found.next_try_at == T0 + dt.timedelta(hours=1)  # the job still has a step

    # The resume job finishes it: the credit note is refunded from the 20.00 Stripe took.
    report = resume_collection(T0 + dt.timedelta(hours=1)).as_dict()
    assert (report["resumed"], report["refunded"], report["finished"]) == (0, 1, 1)
    assert _charges(localstripe, invoice) == [(2000, "succeeded", [500])]
    assert _outage(invoice, 1).next_try_at is None


def test_a_retry_after_stripe_forgot_the_key_does_not_charge_again(app, db_session, mailbox, localstripe, proxy):
    account = _payer(localstripe)
    invoice = finalized_invoice(account.id, 1244)
    db.session.commit()
    _switch(app, proxy, "slow")
    assert collect_invoice(invoice, attempt=1, now=T0).outcome == Outcome.ERROR
    db.session.commit()
    proxy.settle()
    assert _charges(localstripe, invoice) == [(1244, "succeeded", [])]  # charged; we do not know it

    # More than a day later Stripe has forgotten the key: the same request would be executed again.
    probe = {"Idempotency-Key": f"probe-{uuid.uuid4().hex}"}
    first = requests.post(f"{localstripe.url}/v1/customers", headers=probe, auth=(API_KEY, ""), timeout=10).json()
    again = requests.post(f"{localstripe.url}/v1/customers", headers=probe, auth=(API_KEY, ""), timeout=10).json()
    assert again["id"] == first["id"]  # remembered, as within 24 hours
    _forget_keys(localstripe)
    later = requests.post(f"{localstripe.url}/v1/customers", headers=probe, auth=(API_KEY, ""), timeout=10).json()
    assert later["id"] != first["id"]  # forgotten: executed again

    _switch(app, proxy, "up")
    report = resume_collection(T0 + dt.timedelta(hours=25)).as_dict()

    assert report["paid"] == 1
    assert proxy.seen("up", *CREATE) == 0  # the look-up found the charge: nothing created
    assert _charges(localstripe, invoice) == [(1244, "succeeded", [])]
    db.session.expire_all()
    assert invoice.payment_state == PaymentState.PAID
    [payment] = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert payment.stripe_id == intents_for(localstripe, invoice.number)[0]["id"]


def test_the_resume_job_collects_after_the_outage_without_finance(app, db_session, client, mailbox, localstripe, proxy):
    # An invoice of a finalized run (its first attempt) and one in dunning whose first retry is due at T0.
    payer = _payer(localstripe)
    invoice = finalized_invoice(payer.id, 1244)
    late = _payer(localstripe, DECLINED_ON_CHARGE)
    dunned = finalized_invoice(late.id, 990)
    assert collect_invoice(dunned, attempt=1, now=T0 - dt.timedelta(days=3)).outcome == Outcome.FAILED
    db.session.commit()
    save_method(late, localstripe, stripe_js.card())  # a good card now
    run = InvoiceRun(period="2026-10", status=RunStatus.FINALIZED, created_by="finance-test")
    db.session.add(run)
    db.session.flush()
    invoice.run_id = run.id
    db.session.commit()
    login(client, make_user(Role.FINANCE))

    _switch(app, proxy, "down")
    assert collect_invoice(invoice, attempt=1, now=T0).outcome == Outcome.ERROR
    db.session.commit()
    assert run_dunning(T0).errors == 1
    for which, attempt in ((invoice, 1), (dunned, 2)):
        outage = _outage(which, attempt)
        assert outage is not None and (outage.tries, outage.next_try_at) == (1, T0 + 5 * MINUTE)
    page = client.get(f"/backoffice/finance/runs/{run.id}").get_data(as_text=True)
    assert "1 invoice is waiting for the payment provider since" in page and invoice.number in page

    def resume(at: dt.timedelta) -> dict[str, int]:
        return resume_collection(T0 + at).as_dict()

    # Not due yet: the job asks Stripe nothing.
    before = len(proxy.requests)
    assert not any(resume(4 * MINUTE).values()) and len(proxy.requests) == before
    # Due, Stripe still down: each try waits longer (5, 15, 60 minutes, then hourly).
    assert resume(5 * MINUTE)["waiting"] == 2
    assert _outage(invoice, 1).next_try_at == T0 + 5 * MINUTE + resume_delay(2) == T0 + 20 * MINUTE
    assert resume(20 * MINUTE)["waiting"] == 2
    assert _outage(dunned, 2).next_try_at == T0 + 20 * MINUTE + resume_delay(3) == T0 + 80 * MINUTE
    assert resume_delay(4) == resume_delay(10) == dt.timedelta(hours=1)
    assert (_outage(invoice, 1).tries, _outage(dunned, 2).tries) == (3, 3)
    assert proxy.seen("down", *CREATE) == 2 * 3  # the first tries only; since then look-ups, no creates

    _switch(app, proxy, "up")
    assert not any(resume(79 * MINUTE).values())
    report = resume(80 * MINUTE)

    assert (report["resumed"], report["paid"], report["finished"], report["waiting"]) == (2, 2, 2, 0)
    db.session.expire_all()
    for which, attempt in ((invoice, 1), (dunned, 2)):
        assert which.payment_state == PaymentState.PAID and which.paid_at == T0 + 80 * MINUTE
        # Nothing reached Stripe while it was down: the one create of the attempt, with its key, once it is up.
        [create] = [c for c in proxy.creates_for(which.number) if c.state == "up" and c.attempt == str(attempt)]
        assert create.key == f"emsp-invoice-{which.number}-attempt-{attempt}" and not create.replayed
        assert [(i["amount"], i["status"]) for i in intents_for(localstripe, which.number)][-1] == (
            which.total_minor,
            "succeeded",
        )
        assert _outage(which, attempt).next_try_at is None
    assert db.session.scalars(select(Payment.attempt).where(Payment.invoice_id == dunned.id)).all() == [1, 2]
    schedule = db.session.get_one(Dunning, dunned.id)
    assert (schedule.stage, schedule.next_attempt_at) == (1, None)  # the retry counted once, dunning over
    assert all(mailbox.to(email)[-1]["Subject"] == "We received your payment" for email in _emails(payer, late))
    page = client.get(f"/backoffice/finance/runs/{run.id}").get_data(as_text=True)
    assert "waiting for the payment provider" not in page
    assert not any(resume(dt.timedelta(hours=3)).values())


def _emails(*accounts: Account) -> list[str]:
    return [user.email for account in accounts for user in account.users]
