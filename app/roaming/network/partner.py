"""What only a partner's own page shows: its parties, the token deliveries that keep failing, its quarantine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from app.cards.models import TokenUpdate
from app.extensions import db
from app.roaming.models import (
    DeliveryStatus,
    Location,
    PartnerParty,
    QuarantinedObject,
    QuarantineOverflow,
    TokenDelivery,
)
from app.roaming.receive import quarantine

MAX_PARTIES = 500  # a hub relays a few hundred parties at most; the page says when there are more
FAILED_DELIVERIES = 20


@dataclass(frozen=True)
class PartyRow:
    country_code: str
    party_id: str
    role: str
    name: str | None
    status: str  # HubClientInfo ConnectionStatus (CONNECTED for a direct partner's parties)
    last_updated: dt.datetime
    locations: int  # locations of this party the partner delivered


def parties_of(partner_id: int) -> tuple[list[PartyRow], int]:
    """The partner's parties (by code, then role) with the locations each brings, at most :data:`MAX_PARTIES`;
    and how many there are."""
    delivered = (
        select(Location.country_code, Location.party_id, func.count().label("locations"))
        .where(Location.partner_id == partner_id)
        .group_by(Location.country_code, Location.party_id)
        .subquery()
    )
    rows = db.session.execute(
        select(PartnerParty, func.coalesce(delivered.c.locations, 0))
        .outerjoin(
            delivered,
            (delivered.c.country_code == PartnerParty.country_code) & (delivered.c.party_id == PartnerParty.party_id),
        )
        .where(PartnerParty.partner_id == partner_id)
        .order_by(PartnerParty.country_code, PartnerParty.party_id, PartnerParty.role)
        .limit(MAX_PARTIES)
    ).all()
    total = db.session.scalar(select(func.count()).where(PartnerParty.partner_id == partner_id)) or 0
    return [
        PartyRow(
            party.country_code, party.party_id, party.role, party.name, party.status, party.last_updated, locations
        )
        for party, locations in rows
    ], total


@dataclass(frozen=True)
class FailedDelivery:
    id: int
    token_uid: str
    change: str  # why the token changed (TokenUpdate.reason)
    changed_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None


def failed_deliveries(partner_id: int, limit: int = FAILED_DELIVERIES) -> list[FailedDelivery]:
    """Token updates to this partner that were tried and have not landed yet, the oldest change first (the
    later updates of the same card wait behind it)."""
    rows = db.session.execute(
        select(TokenDelivery, TokenUpdate.uid, TokenUpdate.reason, TokenUpdate.created_at)
        .join(TokenUpdate, TokenUpdate.id == TokenDelivery.token_update_id)
        .where(
            TokenDelivery.partner_id == partner_id,
            TokenDelivery.status == DeliveryStatus.PENDING,
            TokenDelivery.attempts > 0,
        )
        .order_by(TokenDelivery.token_update_id)
        .limit(limit)
    )
    return [
        FailedDelivery(
            delivery.id, uid, change, changed_at, delivery.attempts, delivery.next_attempt_at, delivery.last_error
        )
        for delivery, uid, change, changed_at in rows
    ]


@dataclass(frozen=True)
class QuarantinePage:
    """A page of the partner's pending quarantined objects, with what sums them up."""

    objects: list[QuarantinedObject]
    total: int
    offset: int
    limit: int
    by_reason: list[quarantine.ReasonCount]
    overflow: list[QuarantineOverflow]  # objects counted but not kept: the quarantine was full

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def quarantine_page(partner_id: int, offset: int = 0, limit: int = 50) -> QuarantinePage:
    offset = max(0, offset)
    return QuarantinePage(
        objects=quarantine.list_quarantined(partner_id=partner_id, pending_only=True, limit=limit, offset=offset),
        total=quarantine.count_quarantined(partner_id=partner_id, pending_only=True),
        offset=offset,
        limit=limit,
        by_reason=quarantine.pending_by_reason(partner_id=partner_id),
        overflow=quarantine.overflow_counts(partner_id=partner_id),
    )


def quarantined_object(partner_id: int, object_id: int) -> QuarantinedObject | None:
    """One quarantined object of this partner (pending or resolved), raw; None when it is not the partner's."""
    found = db.session.get(QuarantinedObject, object_id)
    return found if found is not None and found.partner_id == partner_id else None
