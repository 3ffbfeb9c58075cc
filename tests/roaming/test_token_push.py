"""Token push to a real HTTP Tokens Receiver (the fake CPO): fan-out, order per token, backoff, retries."""

from __future__ import annotations

import datetime as dt

from app.audit.services import Actor
from app.cards import services
from app.cards.models import BlockReason, CardStatus, TokenUpdate
from app.db import utcnow
from app.extensions import db
from app.roaming.models import DeliveryStatus, TokenDelivery
from app.roaming.send.token_push import backoff, enqueue_token_deliveries, push_due_deliveries, run_push
from tests.roaming.fake_cpo.receiver import COMMANDS_PATH, TOKENS_PATH
from tests.roaming.token_fixtures import card_in


def connect(partner, fake_cpo) -> None:  # type: ignore[no-untyped-def]
    """Point the partner at the fake CPO's receivers and let our token in."""
    partner.endpoints = [
        {"identifier": "tokens", "role": "RECEIVER", "url": fake_cpo.url(TOKENS_PATH)},
        {"identifier": "commands", "role": "RECEIVER", "url": fake_cpo.url(COMMANDS_PATH)},
    ]
    partner.registered_at = utcnow() - dt.timedelta(days=1)
    fake_cpo.accepted_tokens.add(partner.outgoing_token)
    db.session.flush()


def test_updates_are_pushed_in_order_with_backoff_after_failures(db_session, partner, fake_cpo):
    connect(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)  # shipped, active: two updates
    services.block_card(card, BlockReason.LOST, Actor.system("test"))  # third update
    updates = db.session.query(TokenUpdate).filter_by(card_id=card.id).order_by(TokenUpdate.id).all()
    assert [u.reason for u in updates] == ["shipped", "active", "blocked"]

    assert enqueue_token_deliveries() == len(db.session.query(TokenUpdate).all())
    assert enqueue_token_deliveries() == 0  # idempotent

    fake_cpo.misbehave["token_push_fail_times"] = 2
    now = utcnow()
    assert push_due_deliveries(now) == (0, 1)  # first update fails; the later ones wait for it
    first = db.session.query(TokenDelivery).filter_by(token_update_id=updates[0].id).one()
    assert first.attempts == 1 and first.last_error and first.next_attempt_at == now + backoff(1)
    assert push_due_deliveries(now) == (0, 0)  # not due yet, and nothing may overtake it

    now += backoff(1)
    assert push_due_deliveries(now) == (0, 1)  # second failure
    assert first.next_attempt_at == now + backoff(2) and backoff(2) == 2 * backoff(1)

    now += backoff(2)
    for _ in range(3):
        push_due_deliveries(now)
    pushed = [entry["body"] for entry in fake_cpo.state["tokens"] if entry["uid"] == card.uid]
    assert [token["valid"] for token in pushed] == [False, True, False]  # shipped, active, blocked — in order
    assert all(entry["method"] == "PUT" and entry["type"] == "RFID" for entry in fake_cpo.state["tokens"])
    assert fake_cpo.state["tokens"][0]["country_code"] == "BE" and fake_cpo.state["tokens"][0]["party_id"] == "VLT"
    rows = db.session.query(TokenDelivery).filter_by(partner_id=partner.id).all()
    assert all(row.status == DeliveryStatus.DELIVERED and row.delivered_at for row in rows)
    assert first.attempts == 3 and first.last_error is None
    # Requests carried our credentials and routing headers.
    put = fake_cpo.requests_to(TOKENS_PATH, "PUT")[0]
    assert put.headers["Ocpi-To-Party-Id"] == "TCP"


def test_a_failing_token_does_not_hold_up_other_tokens(db_session, partner, fake_cpo):
    connect(partner, fake_cpo)
    first_card = card_in(CardStatus.SHIPPED)
    second_card = card_in(CardStatus.SHIPPED)
    enqueue_token_deliveries()
    fake_cpo.misbehave["token_push_fail_times"] = 1
    delivered, failed = push_due_deliveries(utcnow())
    assert (delivered, failed) == (1, 1)
    assert [entry["uid"] for entry in fake_cpo.state["tokens"]] == [second_card.uid]
    assert first_card.uid


def test_partners_without_receiver_and_old_updates_are_skipped(db_session, partner, fake_cpo):
    card_in(CardStatus.SHIPPED)
    assert enqueue_token_deliveries() == 0  # no Tokens receiver endpoint yet
    connect(partner, fake_cpo)
    partner.registered_at = utcnow() + dt.timedelta(seconds=5)  # updates older than the registration
    assert enqueue_token_deliveries() == 0


def test_run_push_commits_and_reports(db_session, partner, fake_cpo):
    connect(partner, fake_cpo)
    card_in(CardStatus.ACTIVE)
    totals = run_push()
    assert totals["enqueued"] == 2 and totals["delivered"] == 2 and totals["pending"] == 0
    assert len(fake_cpo.state["tokens"]) == 2
