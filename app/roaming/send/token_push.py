"""Pushing "token changed" events to partners' Tokens Receivers (mod_tokens push model).

Two steps, both safe to re-run and to run on many workers:

1. :func:`enqueue_token_deliveries` fans every new :class:`~app.cards.models.TokenUpdate` out into one
   :class:`~app.roaming.models.TokenDelivery` per registered partner with a Tokens RECEIVER endpoint
   (unique on update + partner, so a re-run adds nothing twice). A partner gets the updates made since it
   registered; what happened before it pulls with the Tokens GET, as the spec intends.
2. :func:`push_due_deliveries` PUTs the token snapshot of each due delivery. Per (partner, card) the updates go
   strictly in order: update N+1 is not sent before N succeeded (an older state must never overwrite a newer
   one in the CPO's cache). Failures are retried with exponential backoff, forever: a token change must land.
   A partner that gives no answer at all (timed out, no connection, its URL refused) is left alone for the rest of
   the run: its other deliveries wait, still due, for the next run, so a partner that hangs costs one deadline per
   run rather than one per token (and never holds a worker, nor the rows it locked, for hours). A partner that
   answers with an error is still tried for its other tokens: the error may be this token's.

Each attempt is recorded on the delivery (``attempts``, ``last_attempt_at``, ``last_error``, ``next_attempt_at``):
the operations pages read a partner's health from them (``app.roaming.network``).

Only registered partners are pushed to. A suspended partner's deliveries wait (the updates made meanwhile are
fanned out after it resumes, through the straggler window) and then go out in order; an unregistered partner's
wait for a new registration; a removed partner's were dropped when it was removed.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Collection

from sqlalchemy import and_, exists, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.cards.models import TokenUpdate
from app.db import utcnow
from app.extensions import db
from app.roaming.models import DeliveryStatus, Partner, PartnerStatus, TokenDelivery
from app.roaming.ocpi.client import OcpiClient, OcpiClientError

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 6 * 3600
# Transactions commit in any order, so an update with a lower id can become visible after a higher one was
# fanned out. Re-checking this window behind the newest fanned-out update catches those stragglers.
STRAGGLER_WINDOW = dt.timedelta(minutes=10)


def backoff(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, 4 min ... capped at 6 h."""
    return dt.timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def push_partners() -> list[Partner]:
    partners = db.session.scalars(
        select(Partner).where(Partner.status == PartnerStatus.REGISTERED).order_by(Partner.id)
    ).all()
    return [partner for partner in partners if partner.endpoint_url("tokens", "RECEIVER")]


def enqueue_token_deliveries(now: dt.datetime | None = None) -> int:
    """Create the missing deliveries; returns how many were created. Flushes, the caller commits."""
    now = now or utcnow()
    created = 0
    for partner in push_partners():
        newest = db.session.scalar(
            select(func.max(TokenUpdate.created_at))
            .join(TokenDelivery, TokenDelivery.token_update_id == TokenUpdate.id)
            .where(TokenDelivery.partner_id == partner.id)
        )
        since = partner.registered_at or partner.created_at
        if newest is not None:
            since = max(since, newest - STRAGGLER_WINDOW)
        already = exists().where(
            TokenDelivery.token_update_id == TokenUpdate.id, TokenDelivery.partner_id == partner.id
        )
        missing = select(TokenUpdate.id).where(TokenUpdate.created_at >= since, ~already).order_by(TokenUpdate.id)
        ids = db.session.scalars(missing).all()
        if not ids:
            continue
        try:
            with db.session.begin_nested():
                db.session.add_all(
                    [
                        TokenDelivery(
                            token_update_id=update_id,
                            partner_id=partner.id,
                            status=DeliveryStatus.PENDING,
                            attempts=0,
                            next_attempt_at=now,
                        )
                        for update_id in ids
                    ]
                )
                db.session.flush()
            created += len(ids)
        except IntegrityError:
            log.info("token deliveries for partner %s enqueued concurrently; next run catches up", partner.id)
    return created


def _due(now: dt.datetime, limit: int, skipped: Collection[int] = ()) -> list[tuple[TokenDelivery, TokenUpdate]]:
    """Due deliveries that have no earlier pending delivery for the same partner and card (none for the partners
    ``skipped``)."""
    earlier = aliased(TokenDelivery)
    earlier_update = aliased(TokenUpdate)
    blocked = exists().where(
        earlier.partner_id == TokenDelivery.partner_id,
        earlier.status == DeliveryStatus.PENDING,
        earlier.token_update_id < TokenDelivery.token_update_id,
        earlier_update.id == earlier.token_update_id,
        earlier_update.card_id == TokenUpdate.card_id,
    )
    query = (
        select(TokenDelivery, TokenUpdate)
        .join(TokenUpdate, TokenUpdate.id == TokenDelivery.token_update_id)
        .join(Partner, Partner.id == TokenDelivery.partner_id)
        .where(
            and_(TokenDelivery.status == DeliveryStatus.PENDING, TokenDelivery.next_attempt_at <= now),
            Partner.status == PartnerStatus.REGISTERED,  # nothing is pushed to a suspended partner
            ~blocked,
        )
        .where(TokenDelivery.partner_id.not_in(skipped) if skipped else true())
        .order_by(TokenDelivery.token_update_id, TokenDelivery.id)
        .limit(limit)
    )
    # Several workers share the queue: each takes rows the others have not locked (PostgreSQL). On SQLite the same
    # request takes the one write lock at once (app/db.py): concurrent push runs then go one after the other,
    # rather than each sending every update again (and an older token state after a newer one).
    query = query.with_for_update(skip_locked=True, of=TokenDelivery)
    return [(delivery, update) for delivery, update in db.session.execute(query).all()]


class Attempt(enum.Enum):
    """How one delivery attempt went."""

    DELIVERED = "delivered"
    REFUSED = "refused"  # the partner answered with an error: retried later, its other tokens are still tried
    NO_ANSWER = "no_answer"  # timed out, no connection, URL refused: retried later, the partner left for this run


def attempt_delivery(delivery: TokenDelivery, update: TokenUpdate, partner: Partner, now: dt.datetime) -> Attempt:
    """PUT one token snapshot; record success or schedule the retry."""
    base = (partner.endpoint_url("tokens", "RECEIVER") or "").rstrip("/")
    token = update.token
    url = f"{base}/{token['country_code']}/{token['party_id']}/{token['uid']}"
    delivery.attempts += 1
    delivery.last_attempt_at = now
    try:
        OcpiClient(partner).put(url, token, params={"type": token.get("type", update.token_type)})
    except OcpiClientError as exc:
        delivery.last_error = str(exc)[:2000]
        delivery.next_attempt_at = now + backoff(delivery.attempts)
        # No HTTP answer at all: the partner's other deliveries would meet the same (and each wait a deadline).
        return Attempt.NO_ANSWER if exc.http_status is None else Attempt.REFUSED
    delivery.status = DeliveryStatus.DELIVERED
    delivery.delivered_at = now
    delivery.last_error = None
    return Attempt.DELIVERED


def push_due_deliveries(
    now: dt.datetime | None = None, limit: int = 500, unanswered: set[int] | None = None
) -> tuple[int, int]:
    """Push due deliveries, one per (partner, card) per round, in update order. Returns (delivered, failed).

    ``unanswered`` (partner ids) carries the partners that gave no answer from one round to the next: they are
    not tried again in this run, and a partner that gives none in this round is added.

    Flushes; the caller commits (the CLI and the task commit after each call and call again while work
    remains, so a crash loses at most one batch of bookkeeping — and a repeated PUT is harmless).
    """
    now = now or utcnow()
    unanswered = unanswered if unanswered is not None else set()
    delivered = failed = 0
    partners: dict[int, Partner] = {}
    failed_keys: set[tuple[int, int]] = set()
    for delivery, update in _due(now, limit, skipped=set(unanswered)):
        key = (delivery.partner_id, update.card_id)
        if key in failed_keys or delivery.partner_id in unanswered:
            continue  # an earlier update of this card failed this round (keep the order), or no answer this run
        partner = partners.get(delivery.partner_id) or db.session.get_one(Partner, delivery.partner_id)
        partners[delivery.partner_id] = partner
        outcome = attempt_delivery(delivery, update, partner, now)
        if outcome == Attempt.DELIVERED:
            delivered += 1
            continue
        failed += 1
        failed_keys.add(key)
        if outcome == Attempt.NO_ANSWER:
            unanswered.add(delivery.partner_id)
            log.warning("token push: partner %s gave no answer; its other deliveries wait for the next run", partner.id)
    db.session.flush()
    return delivered, failed


def pending_count() -> int:
    """Deliveries still to push to registered partners (a suspended or unregistered partner's wait apart)."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(TokenDelivery)
            .join(Partner, Partner.id == TokenDelivery.partner_id)
            .where(TokenDelivery.status == DeliveryStatus.PENDING, Partner.status == PartnerStatus.REGISTERED)
        )
        or 0
    )


def run_push(now: dt.datetime | None = None, *, commit: bool = True, max_rounds: int = 100) -> dict[str, int]:
    """Enqueue, then push round after round until nothing more is due (what the CLI and the task run)."""
    totals = {"enqueued": enqueue_token_deliveries(now), "delivered": 0, "failed": 0}
    if commit:
        db.session.commit()
    unanswered: set[int] = set()  # partners that gave no answer in this run: left alone until the next one
    for _ in range(max_rounds):
        delivered, failed = push_due_deliveries(now, unanswered=unanswered)
        if commit:
            db.session.commit()
        totals["delivered"] += delivered
        totals["failed"] += failed
        if delivered == 0:
            break
    totals["pending"] = pending_count()
    return totals


__all__ = ["Attempt", "attempt_delivery", "backoff", "enqueue_token_deliveries", "push_due_deliveries", "run_push"]
