"""The statements behind the network figures, each grouped by partner over the given partner ids: a fixed number of
statements for any number of partners."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute

from app.cards.models import TokenUpdate
from app.extensions import db
from app.roaming.models import (
    Connector,
    DeliveryStatus,
    Evse,
    Location,
    PartnerParty,
    PullCursor,
    TokenDelivery,
)
from app.roaming.network.figures import (
    Cursor,
    Infrastructure,
    Parties,
    QuarantineCount,
    ReasonCount,
    TokenPushes,
)
from app.roaming.places import CONNECTED_PARTY
from app.roaming.receive.quarantine import quarantine_summary
from app.roaming.send.authorization_log import answers_since

REMOVED_EVSE = "REMOVED"  # EvseStatus: the EVSE no longer exists
AVAILABLE_EVSE = "AVAILABLE"


def _for(partner_column: InstrumentedAttribute[Any], ids: list[int]) -> ColumnElement[bool]:
    return partner_column.in_(ids) if ids else literal(False)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """An aggregate read back through a subquery loses the column's type, so SQLite hands it back naive: it is
    UTC like everything we store."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class PartyFigures:
    parties: Parties
    updated_at: dt.datetime | None  # the newest party row (for a hub: its newest ClientInfo)


def parties(ids: list[int]) -> dict[int, PartyFigures]:
    """Distinct parties per connection (one party may hold several roles), how many are connected, their roles
    and the newest party update."""
    per_party = (
        select(
            PartnerParty.partner_id,
            func.max(case((PartnerParty.status == CONNECTED_PARTY, 1), else_=0)).label("connected"),
            func.max(PartnerParty.last_updated).label("updated_at"),
        )
        .where(_for(PartnerParty.partner_id, ids))
        .group_by(PartnerParty.partner_id, PartnerParty.country_code, PartnerParty.party_id)
        .subquery()
    )
    counts = db.session.execute(
        select(
            per_party.c.partner_id, func.count(), func.sum(per_party.c.connected), func.max(per_party.c.updated_at)
        ).group_by(per_party.c.partner_id)
    ).all()
    roles: dict[int, set[str]] = defaultdict(set)
    for partner_id, role in db.session.execute(
        select(PartnerParty.partner_id, PartnerParty.role).where(_for(PartnerParty.partner_id, ids)).distinct()
    ):
        roles[partner_id].add(role.upper())
    return {
        partner_id: PartyFigures(Parties(total, int(connected or 0), tuple(sorted(roles[partner_id]))), _utc(newest))
        for partner_id, total, connected, newest in counts
    }


@dataclass(frozen=True)
class InfrastructureFigures:
    infrastructure: Infrastructure
    updated_at: dt.datetime | None  # the newest location's last_updated


def infrastructure(ids: list[int]) -> tuple[dict[int, InfrastructureFigures], int]:
    """Locations (with the newest ``last_updated``), live EVSEs (not REMOVED) and those AVAILABLE, and their
    connectors, per partner; and how many locations were delivered by no partner (imported from files).

    Three grouped statements (locations; EVSEs joined to their location; connectors joined to both) rather than
    one: joining connectors into the EVSE count would need a DISTINCT over every EVSE."""
    wanted = _for(Location.partner_id, ids)
    locations = {
        partner_id: (count, newest)
        for partner_id, count, newest in db.session.execute(
            select(Location.partner_id, func.count(), func.max(Location.last_updated))
            .where(wanted | Location.partner_id.is_(None))
            .group_by(Location.partner_id)
        )
    }
    live = Evse.status != REMOVED_EVSE
    evses = {
        partner_id: (count, available)
        for partner_id, count, available in db.session.execute(
            select(Location.partner_id, func.count(), func.count(case((Evse.status == AVAILABLE_EVSE, 1))))
            .join(Location, Location.id == Evse.location_id)
            .where(live, wanted)
            .group_by(Location.partner_id)
        )
    }
    connectors = {
        partner_id: count
        for partner_id, count in db.session.execute(
            select(Location.partner_id, func.count())
            .select_from(Connector)
            .join(Evse, Evse.id == Connector.evse_id)
            .join(Location, Location.id == Evse.location_id)
            .where(live, wanted)
            .group_by(Location.partner_id)
        )
    }
    figures = {}
    for partner_id in ids:
        location_count, newest = locations.get(partner_id, (0, None))
        evse_count, available = evses.get(partner_id, (0, 0))
        figures[partner_id] = InfrastructureFigures(
            Infrastructure(location_count, evse_count, connectors.get(partner_id, 0), available), newest
        )
    return figures, locations.get(None, (0, None))[0]


def cursors(ids: list[int]) -> dict[int, list[Cursor]]:
    """The pull cursors: a few per partner, one per module it was pulled for."""
    found: dict[int, list[Cursor]] = defaultdict(list)
    statement = select(PullCursor).where(_for(PullCursor.partner_id, ids)).order_by(PullCursor.module)
    for cursor in db.session.scalars(statement):
        found[cursor.partner_id].append(
            Cursor(
                module=cursor.module,
                synced_until=cursor.synced_until,
                running_since=cursor.run_started_at,
                resuming=cursor.next_url is not None,
                objects_received=cursor.objects_received,
                last_error=cursor.last_error,
                updated_at=cursor.updated_at,
            )
        )
    return found


def token_pushes(ids: list[int]) -> dict[int, TokenPushes]:
    """Deliveries still pending per partner (few: each is retried until it lands), over the index on status; and,
    for a partner whose deliveries fail, the newest failed attempt and its error (its health)."""
    failing = (TokenDelivery.status == DeliveryStatus.PENDING) & (TokenDelivery.attempts > 0)
    rows = db.session.execute(
        select(
            TokenDelivery.partner_id,
            func.count(),
            func.count(case((TokenDelivery.attempts > 0, 1))),
            func.min(TokenUpdate.created_at),
            func.max(case((failing, TokenDelivery.last_attempt_at))),
        )
        .join(TokenUpdate, TokenUpdate.id == TokenDelivery.token_update_id)
        .where(TokenDelivery.status == DeliveryStatus.PENDING, _for(TokenDelivery.partner_id, ids))
        .group_by(TokenDelivery.partner_id)
    )
    errors = _last_delivery_errors(ids, failing)
    return {
        partner_id: TokenPushes(pending, failing_count, _utc(oldest), _utc(last_failed), errors.get(partner_id))
        for partner_id, pending, failing_count, oldest, last_failed in rows
    }


def _last_delivery_errors(ids: list[int], failing: ColumnElement[bool]) -> dict[int, str | None]:
    """Per partner, the error of its most recently tried delivery among those still failing: one statement, the
    newest attempt ranked first within each partner (deliveries tried before attempts were timed come last)."""
    ranked = (
        select(
            TokenDelivery.partner_id,
            TokenDelivery.last_error,
            func.row_number()
            .over(
                partition_by=TokenDelivery.partner_id,
                order_by=(TokenDelivery.last_attempt_at.desc().nulls_last(), TokenDelivery.id.desc()),
            )
            .label("newest"),
        )
        .where(failing, _for(TokenDelivery.partner_id, ids))
        .subquery()
    )
    return {
        partner_id: error
        for partner_id, error in db.session.execute(
            select(ranked.c.partner_id, ranked.c.last_error).where(ranked.c.newest == 1)
        )
    }


def quarantine(ids: list[int]) -> dict[int, dict[str, QuarantineCount]]:
    """Pending quarantined objects per partner and module, from the quarantine's own grouped summary."""
    wanted = set(ids)
    found: dict[int, dict[str, QuarantineCount]] = defaultdict(dict)
    for partner_id, module, pending, oldest in quarantine_summary():
        if partner_id in wanted:
            found[partner_id][module] = QuarantineCount(pending, _utc(oldest))
    return found


def authorizations(ids: list[int], since: dt.datetime) -> dict[int, list[ReasonCount]]:
    """Our answers per partner since ``since``, by answer and reason, most frequent first."""
    found: dict[int, list[ReasonCount]] = defaultdict(list)
    for partner_id, allowed, reason, count in answers_since(ids, since):
        found[partner_id].append(ReasonCount(allowed, reason, count))
    for rows in found.values():
        rows.sort(key=lambda row: (-row.count, row.allowed, row.reason))
    return found
