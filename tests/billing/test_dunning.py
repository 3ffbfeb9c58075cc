"""Dunning against localstripe: retries at +3, +7 and +14 days with an email each time, then the account's
cards are blocked (audited, token updates queued for partners) and the invoice is UNCOLLECTIBLE."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.accounts.services import send_pending
from app.audit.models import AuditEntry
from app.audit.services import Actor
from app.billing.collection.dunning_runner import run_dunning
from app.billing.collection.services import Outcome, collect_invoice
from app.billing.collection.tasks import collect_invoice_task, run_dunning_task
from app.billing.models import CollectionOutage, Dunning, Payment, PaymentState
from app.cards import services as card_services
from app.cards.models import BlockReason, CardStatus, TokenUpdate
from app.extensions import db
from app.payments.stripe_client import reset_stripe_client
from app.roaming.send.authorization import Standing, account_standing
from tests.billing.conftest import DECLINED_ON_CHARGE, finalized_invoice, intents_for, save_method
from tests.factories import add_stock, make_user
from tests.payments import stripe_js

pytestmark = pytest.mark.usefixtures("stripe_app")

NOW = dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def driver_with_cards(localstripe, card_number: str = DECLINED_ON_CHARGE):  # type: ignore[no-untyped-def]
    user = make_user()
    save_method(user.account, localstripe, stripe_js.card(card_number))
    system = Actor.system("test")
    app_token = card_services.issue_app_token(user.account, Actor.of(user))
    add_stock(1, start=7000)
    rfid = card_services.order_card(user.account, system)
    card_services.ship_card(rfid, system)
    card_services.activate_by_operations(rfid, system)
    db.session.commit()
    return user, [app_token, rfid]


def first_collection(invoice):  # type: ignore[no-untyped-def]
    result = collect_invoice(invoice, attempt=1, now=NOW)
    db.session.commit()
    send_pending(result.emails)
    return result


def test_full_dunning_ends_with_blocked_cards_and_token_updates(db_session, localstripe, mailbox):
    user, cards = driver_with_cards(localstripe)
    invoice = finalized_invoice(user.account.id, 2599)
    assert first_collection(invoice).outcome == Outcome.FAILED
    updates_before = db.session.scalar(select(db.func.count(TokenUpdate.id)))

    assert run_dunning(NOW + 2 * DAY).retried == 0  # not due yet

    day3 = run_dunning(NOW + 3 * DAY)
    assert (day3.retried, day3.failed, day3.blocked) == (1, 1, 0)
    schedule = db.session.get(Dunning, invoice.id)
    assert (schedule.stage, schedule.next_attempt_at) == (1, NOW + 7 * DAY)
    assert invoice.payment_state == PaymentState.FAILED
    assert all(card.status == CardStatus.ACTIVE for card in cards)

    assert run_dunning(NOW + 7 * DAY).failed == 1
    assert (schedule.stage, schedule.next_attempt_at) == (2, NOW + 14 * DAY)

    last = run_dunning(NOW + 14 * DAY)
    assert (last.retried, last.blocked) == (1, 1)
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.UNCOLLECTIBLE
    assert (schedule.stage, schedule.next_attempt_at, schedule.cards_blocked_at) == (3, None, NOW + 14 * DAY)
    for card in cards:
        db.session.refresh(card)
        assert (card.status, card.block_reason) == (CardStatus.BLOCKED, BlockReason.PAYMENT)
    # Partners learn it through the token updates the card service queued: valid = false.
    updates = db.session.scalars(
        select(TokenUpdate).where(TokenUpdate.card_id.in_([c.id for c in cards])).order_by(TokenUpdate.id.desc())
    ).all()
    assert db.session.scalar(select(db.func.count(TokenUpdate.id))) == updates_before + 2
    latest = {update.card_id: update for update in reversed(updates)}
    assert {card_id: (update.reason, update.token["valid"]) for card_id, update in latest.items()} == {
        cards[0].id: ("blocked", False),
        cards[1].id: ("blocked", False),
    }
    blocked_audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "card.blocked")).all()
    assert {(entry.subject_id, entry.actor_label) for entry in blocked_audit} == {
        (str(card.id), "dunning") for card in cards
    }
    assert account_standing(user.account.id) == Standing.NO_CREDIT

    # Four attempts, four PaymentIntents, each with its own idempotency key (invoice number + attempt).
    payments = db.session.scalars(
        select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.attempt)
    ).all()
    assert [(p.attempt, p.status) for p in payments] == [(n, "requires_payment_method") for n in (1, 2, 3, 4)]
    assert sorted(int(i["metadata"]["attempt"]) for i in intents_for(localstripe, invoice.number)) == [1, 2, 3, 4]
    assert [mail["Subject"] for mail in mailbox.to(user.email)] == [
        "Your payment did not go through",
        "Reminder: your invoice is still unpaid",
        "Reminder: your invoice is still unpaid",
        "Your charge cards are blocked",
    ]

    assert run_dunning(NOW + 30 * DAY).retried == 0  # finished


def test_a_retry_that_works_stops_dunning(db_session, localstripe, mailbox):
    user, _ = driver_with_cards(localstripe)
    invoice = finalized_invoice(user.account.id, 1500)
    first_collection(invoice)
    save_method(user.account, localstripe, stripe_js.card())  # the driver replaced the card

    report = run_dunning(NOW + 3 * DAY)

    assert (report.retried, report.paid) == (1, 1)
    db.session.refresh(invoice)
    assert invoice.payment_state == PaymentState.PAID
    assert db.session.get(Dunning, invoice.id).next_attempt_at is None
    assert mailbox.to(user.email)[-1]["Subject"] == "We received your payment"
    assert run_dunning(NOW + 7 * DAY).retried == 0


def test_a_stripe_outage_leaves_the_retry_in_flight_for_the_resume_job(db_session, localstripe, stripe_app):
    user, _ = driver_with_cards(localstripe)
    invoice = finalized_invoice(user.account.id, 1500)
    first_collection(invoice)
    stripe_app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"
    reset_stripe_client(stripe_app)

    report = run_dunning(NOW + 3 * DAY)

    assert (report.retried, report.errors) == (0, 1)
    schedule = db.session.get(Dunning, invoice.id)
    db.session.refresh(schedule)
    # The retry was made (counted) and waits for Stripe's answer, which the resume job fetches (its own tests:
    # tests/faults/test_stripe_outage_resume.py); no second payment row, no new retry from the next dunning run.
    assert (schedule.stage, schedule.next_attempt_at) == (1, None)
    outage = db.session.get(CollectionOutage, (invoice.id, 2))
    assert (outage.tries, outage.next_try_at) == (1, NOW + 3 * DAY + dt.timedelta(minutes=5))
    assert len(db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()) == 1
    assert run_dunning(NOW + 30 * DAY).retried == 0


def test_celery_tasks_collect_and_run_dunning(db_session, localstripe, mailbox):
    user, _ = driver_with_cards(localstripe, stripe_js.VISA)
    invoice = finalized_invoice(user.account.id, 1100)
    db.session.commit()
    assert collect_invoice_task.delay(invoice.id).get() == "paid"
    assert collect_invoice_task.delay(invoice.id).get() == "already"
    assert mailbox.to(user.email)[-1]["Subject"] == "We received your payment"
    assert set(run_dunning_task.delay().get()) >= {"retried", "blocked", "errors"}
