"""Fault: a partner that answers 500 or hangs past our deadline during token push and pull (issue 17, "Faults, as
tests in the suite").

The partner is the test CPO (``tests/roaming/fake_cpo``) over real HTTP, switched into an outage
(``misbehave["outage"]``: ``"500"`` answers HTTP 500 / OCPI 3000 to everything, ``"hang"`` answers nothing until
long after our client's deadline). While it is down:

- token pushes are retried with growing delays (the recorded next attempt times), one delivery per token at a
  time: a later state of a token is never sent while an earlier one waits, so the CPO never receives an older
  state after a newer one; a partner that does not answer at all costs one deadline per push run, not one per
  token (its other deliveries wait for the next run);
- a pull fails after its retries (with growing pauses), records the error on its cursor and does not move it;
- the operations page shows the partner's health: the last error and when it happened, the failing deliveries,
  when a token last reached it and how far the pull got.

Once the partner is back, every update lands, in order per token, once; the next pull resumes where the failed
one stood and gets every object once.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.accounts.models import Role
from app.audit.services import Actor
from app.cards import services
from app.cards.models import BlockReason, Card, CardStatus, TokenUpdate
from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.roaming.models import DeliveryStatus, Partner, PartnerStatus, PullCursor, TokenDelivery
from app.roaming.network.overview import partner_overview
from app.roaming.ocpi.auth import hash_token
from app.roaming.receive import pull_batch
from app.roaming.receive.pull import PullError, pull
from app.roaming.send.token_push import backoff, run_push
from tests.factories import login, make_user
from tests.roaming.fake_cpo import FakeCpo, start_fake_cpo
from tests.roaming.fake_cpo.receiver import TOKENS_PATH
from tests.roaming.fake_cpo.sender import sender_endpoints
from tests.roaming.token_fixtures import card_in
from tests.shared_data import EXAMPLES

STAFF = Actor.system("test-operations")
READ_TIMEOUT = 0.3  # our client's deadline for the test: a hanging partner costs this much per call
SECOND = dt.timedelta(seconds=1)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def cpo() -> Iterator[FakeCpo]:
    running = start_fake_cpo()
    running.cpo.misbehave["outage_hang_seconds"] = 10 * READ_TIMEOUT
    try:
        yield running.cpo
    finally:
        running.stop()


@pytest.fixture
def partner(db_session: Any, cpo: FakeCpo, app: Flask, monkeypatch: pytest.MonkeyPatch) -> Partner:
    """The CPO (NL/TCP) registered a day ago: we push tokens to its Receiver and pull its CDRs."""
    monkeypatch.setitem(app.config, "OCPI_READ_TIMEOUT", READ_TIMEOUT)
    monkeypatch.setitem(app.config, "OCPI_CALL_DEADLINE", 3 * READ_TIMEOUT)
    registered = Partner(
        name="Flaky CPO",
        country_code="NL",
        party_id="TCP",
        status=PartnerStatus.REGISTERED,
        incoming_token_hash=hash_token("flaky-cpo-token"),
        outgoing_token="our-token-for-the-flaky-cpo",
        registered_at=utcnow() - dt.timedelta(days=1),
        version="2.2.1",
        endpoints=[
            {"identifier": "tokens", "role": "RECEIVER", "url": cpo.url(TOKENS_PATH)},
            *[endpoint for endpoint in sender_endpoints(cpo) if endpoint["identifier"] == "cdrs"],
        ],
    )
    db.session.add(registered)
    db.session.commit()
    cpo.accepted_tokens.add("our-token-for-the-flaky-cpo")
    return registered


def _pushed(cpo: FakeCpo, card: Card) -> list[dict[str, Any]]:
    """The token states the CPO took for ``card``, in the order it took them."""
    return [entry["body"] for entry in cpo.state.get("tokens", []) if entry["uid"] == card.uid]


def _states(card: Card) -> list[dict[str, Any]]:
    """Every state of ``card`` we recorded (its token updates), oldest first."""
    return list(
        db.session.scalars(select(TokenUpdate.token).where(TokenUpdate.card_id == card.id).order_by(TokenUpdate.id))
    )


def _deliveries(partner: Partner, card: Card) -> list[TokenDelivery]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(TokenDelivery)
            .join(TokenUpdate, TokenUpdate.id == TokenDelivery.token_update_id)
            .where(TokenDelivery.partner_id == partner.id, TokenUpdate.card_id == card.id)
            .order_by(TokenDelivery.token_update_id)
        )
    )


def _head(partner: Partner, card: Card) -> TokenDelivery:
    """The card's oldest delivery not yet landed: the only one that may be tried."""
    return next(d for d in _deliveries(partner, card) if d.status == DeliveryStatus.PENDING)


def _token_requests(cpo: FakeCpo) -> int:
    return len(cpo.requests_to(TOKENS_PATH))


@pytest.fixture
def operations(client: Any) -> Any:
    """A browser signed in as operations staff."""
    login(client, make_user(Role.OPERATIONS))
    return client


def _operations_page(client: Any, partner: Partner) -> str:
    response = client.get(f"/backoffice/operations/partners/{partner.id}")
    assert response.status_code == 200
    return str(response.get_data(as_text=True))


def test_token_updates_wait_out_the_outage_with_backoff_and_land_in_order(
    operations: Any, partner: Partner, cpo: FakeCpo
) -> None:
    first, second, third = card_in(CardStatus.ACTIVE), card_in(CardStatus.ACTIVE), card_in(CardStatus.SHIPPED)
    db.session.commit()
    before = utcnow()
    assert run_push(before)["pending"] == 0  # the partner is up: shipped and active reach it
    last_delivered = before

    # The partner goes down; meanwhile our drivers' cards change, one of them three times.
    cpo.misbehave["outage"] = "500"
    services.block_card(first, BlockReason.LOST, STAFF)
    services.unblock_card(first, STAFF)
    services.block_card(first, BlockReason.STOLEN, STAFF)
    services.block_card(second, BlockReason.LOST, STAFF)
    services.activate_by_operations(third, STAFF)
    db.session.commit()
    cards = (first, second, third)

    # HTTP 500: each card's oldest update is tried and fails; the later ones of the same card wait behind it.
    now = before + SECOND
    delays: list[dt.timedelta] = []
    for attempt in (1, 2):
        sent = _token_requests(cpo)
        totals = run_push(now)
        assert (totals["delivered"], totals["failed"]) == (0, 3)
        assert _token_requests(cpo) - sent == 3  # one per card, never a later state of a card
        heads = [_head(partner, card) for card in cards]
        assert [head.attempts for head in heads] == [attempt] * 3
        assert {head.next_attempt_at - now for head in heads} == {backoff(attempt)}
        assert all("HTTP 500" in (head.last_error or "") for head in heads)
        assert all(d.attempts == 0 for d in _deliveries(partner, first)[3:])  # unblock and the second block wait
        delays.append(heads[0].next_attempt_at - now)
        sent = _token_requests(cpo)
        run_push(heads[0].next_attempt_at - SECOND)  # not due yet: nothing is tried
        assert _token_requests(cpo) == sent
        now = heads[0].next_attempt_at

    # It hangs now: the first call runs into our deadline, and the partner's other deliveries wait for the next
    # run rather than each costing a deadline of its own.
    cpo.misbehave["outage"] = "hang"
    for expected_card in (first, second):
        sent, started = _token_requests(cpo), time.monotonic()
        totals = run_push(now)
        assert (totals["delivered"], totals["failed"]) == (0, 1)
        assert _token_requests(cpo) - sent == 1
        assert time.monotonic() - started < 3 * READ_TIMEOUT + 1.5  # one deadline, not one per token
        head = _head(partner, expected_card)
        assert head.attempts == 3 and head.next_attempt_at == now + backoff(3)
        assert "timed out" in (head.last_error or "")
    delays.append(_head(partner, first).next_attempt_at - now)
    assert delays == [backoff(1), backoff(2), backoff(3)] and delays[0] < delays[1] < delays[2]
    assert _head(partner, third).attempts == 2  # not tried in the hanging runs: it waits its turn

    # Health, while it is down: the last error and when, what keeps failing, when a token last reached it.
    overview = partner_overview(partner.id)
    assert overview is not None
    assert (overview.tokens.pending, overview.tokens.failing) == (5, 3)
    assert overview.tokens.last_error is not None and "timed out" in overview.tokens.last_error
    assert overview.tokens.last_failed_at == now
    assert overview.sent["tokens"] == last_delivered
    page = _operations_page(operations, partner)
    assert "5 pending, 3 failing" in page
    assert "timed out" in page and "HTTP 500" in page  # the last error; each failing delivery's own
    assert "Token deliveries that keep failing" in page and first.uid in page and third.uid in page
    network = operations.get("/backoffice/operations/").get_data(as_text=True)
    assert "last failed" in network and "timed out" in network and "last delivered" in network

    # Back up. Once the retries are due, everything lands: each card's states in the order they were made, once.
    cpo.misbehave.pop("outage")
    now = max(_head(partner, card).next_attempt_at for card in cards)
    totals = run_push(now)
    assert totals["pending"] == 0 and totals["failed"] == 0
    for card in cards:
        assert _pushed(cpo, card) == _states(card), f"card {card.uid}: lost, doubled or out of order"
        assert all(d.status == DeliveryStatus.DELIVERED and d.last_error is None for d in _deliveries(partner, card))
    assert [_pushed(cpo, card)[-1]["valid"] for card in cards] == [False, False, True]  # blocked, blocked, active
    healthy = partner_overview(partner.id)
    assert healthy is not None
    assert (healthy.tokens.pending, healthy.tokens.failing, healthy.tokens.last_error) == (0, 0, None)
    assert healthy.sent["tokens"] == now
    assert first.uid not in _operations_page(operations, partner)  # no failing delivery listed any more


def _cdr(number: int, last_updated: dt.datetime) -> dict[str, Any]:
    example = json.loads((EXAMPLES / "cdr_example.json").read_text())
    stamp = last_updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**example, "country_code": "NL", "party_id": "TCP", "id": f"FLAKY-{number}", "last_updated": stamp}


def _stored_cdrs() -> list[str]:
    return sorted(db.session.scalars(select(Cdr.ocpi_id).where(Cdr.party_id == "TCP")))


def test_pull_during_the_outage_keeps_its_cursor_and_gets_everything_once_after(
    operations: Any, partner: Partner, cpo: FakeCpo
) -> None:
    monday = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    cpo.data["cdrs"] = [_cdr(number, monday + number * SECOND) for number in range(3)]
    assert pull(partner, "cdrs", limit=2, clock=lambda: monday + HOUR).stored == 3
    synced = monday + HOUR

    # New CDRs at the CPO; it goes down before we pull them.
    cpo.data["cdrs"] = [*cpo.data["cdrs"], *(_cdr(number, synced + number * SECOND) for number in range(3, 6))]
    run_start = synced + HOUR
    for mode, error, clock in (("500", "HTTP 500", run_start), ("hang", "timed out", run_start + HOUR)):
        cpo.misbehave["outage"] = mode
        pauses: list[float] = []
        with pytest.raises(PullError, match=error):
            pull(
                partner,
                "cdrs",
                limit=2,
                retries=2,
                backoff=0.25,
                sleep=pauses.append,
                clock=lambda moment=clock: moment,
            )
        assert pauses == [0.25, 0.5]  # retried with growing pauses, then given up
        cursor = db.session.scalars(select(PullCursor).where(PullCursor.partner_id == partner.id)).one()
        db.session.refresh(cursor)
        # The cursor does not move: the next run asks again from where the last complete one ended.
        assert cursor.synced_until == synced and cursor.run_started_at == run_start
        assert cursor.last_error is not None and error in cursor.last_error
        assert _stored_cdrs() == [f"FLAKY-{number}" for number in range(3)]

    overview = partner_overview(partner.id)
    assert overview is not None
    pulled = overview.cursor("cdrs")
    assert pulled is not None and pulled.synced_until == synced and "timed out" in (pulled.last_error or "")
    page = _operations_page(operations, partner)
    assert "timed out" in page and "error" in page

    # Back up: the next pull resumes the interrupted run (same window) and gets the new CDRs, once.
    cpo.misbehave.pop("outage")
    served_before = len(cpo.requests_to("/ocpi/cpo/2.2.1/cdrs"))
    result = pull(partner, "cdrs", limit=2, clock=lambda: run_start + 2 * HOUR)
    assert result.resumed and (result.received, result.stored) == (3, 3)
    assert _stored_cdrs() == [f"FLAKY-{number}" for number in range(6)]
    db.session.expire_all()
    cursor = db.session.scalars(select(PullCursor).where(PullCursor.partner_id == partner.id)).one()
    assert cursor.synced_until == run_start and cursor.last_error is None and cursor.next_url is None
    assert len(cpo.requests_to("/ocpi/cpo/2.2.1/cdrs")) - served_before == 2  # two pages of two, then the end
    again = pull(partner, "cdrs", limit=2, clock=lambda: run_start + 3 * HOUR)
    assert (again.received, again.stored) == (0, 0)  # nothing twice
    healthy = partner_overview(partner.id)
    assert healthy is not None and all(not cursor.last_error for cursor in healthy.cursors)


def test_a_partner_that_gives_no_answer_has_its_other_modules_left_for_the_next_run(
    partner: Partner, cpo: FakeCpo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The periodic pull asks each module of a partner in turn, each with its retries: against a partner that
    hangs that is minutes per module. Once one module got no answer at all, the others wait for the next run (their
    cursors untouched); a partner that answers with an error still has its other modules pulled."""
    partner.endpoints = [*partner.endpoints, *(e for e in sender_endpoints(cpo) if e["identifier"] == "tariffs")]
    db.session.commit()
    monkeypatch.setattr(pull_batch, "pull", functools.partial(pull, retries=0))

    cpo.misbehave["outage"] = "hang"
    report = pull_batch.pull_partner_modules(partner.id)
    assert list(report) == ["tariffs", "cdrs"]
    assert "timed out" in report["tariffs"]["error"] and report["tariffs"]["no_answer"]
    assert report["cdrs"] == {"skipped": "the partner gave no answer to tariffs: pulled in the next run"}
    assert len(cpo.requests_to("/ocpi/cpo/2.2.1/cdrs")) == 0
    cursors = {c.module: c for c in db.session.scalars(select(PullCursor).where(PullCursor.partner_id == partner.id))}
    assert set(cursors) == {"tariffs"}  # the skipped module's cursor was not even made

    cpo.misbehave["outage"] = "500"
    report = pull_batch.pull_partner_modules(partner.id)
    assert "HTTP 500" in report["tariffs"]["error"] and not report["tariffs"]["no_answer"]
    assert "HTTP 500" in report["cdrs"]["error"]  # an answer, even an error: the next module is asked all the same
