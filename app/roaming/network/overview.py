"""The network overview (every partner and hub) and one partner's row of it."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from app.charging.models import Authorization, Cdr, ChargingSession
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Partner, TariffVersion, TokenDelivery
from app.roaming.network import grouped
from app.roaming.network.figures import (
    Authorizations,
    Cursor,
    Infrastructure,
    NetworkOverview,
    Parties,
    PartnerOverview,
    QuarantineCount,
    ReasonCount,
    TokenPushes,
)

AUTHORIZATION_WINDOW = dt.timedelta(hours=24)


def network_overview(now: dt.datetime | None = None) -> NetworkOverview:
    """Every partner and hub with its figures, by name. The infrastructure counts (locations, EVSEs, connectors:
    whole tables) are kept per process for ``OPERATIONS_FIGURES_CACHE_SECONDS``; everything else is read now."""
    since = (now or utcnow()) - AUTHORIZATION_WINDOW
    rows = db.session.execute(select(*_partner_columns()).order_by(Partner.name, Partner.id)).all()
    ids = [row.id for row in rows]
    counted = _counted_infrastructure(ids)
    figures = _Figures.of(ids, since, counted)
    return NetworkOverview(
        partners=tuple(figures.overview(row) for row in rows),
        since=since,
        unassigned_locations=counted.unassigned,
        counted_at=counted.counted_at,
    )


def partner_overview(partner_id: int, now: dt.datetime | None = None) -> PartnerOverview | None:
    """One partner's figures, the same as its row of :func:`network_overview` but all read now; None for an
    unknown id."""
    row = db.session.execute(select(*_partner_columns()).where(Partner.id == partner_id)).one_or_none()
    if row is None:
        return None
    return _Figures.of([partner_id], (now or utcnow()) - AUTHORIZATION_WINDOW, _Counted.now([partner_id])).overview(row)


INFRASTRUCTURE_CACHE_KEY = "roaming.network.infrastructure"
DEFAULT_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class _Counted:
    """The infrastructure counts of a set of partners, and when they were counted."""

    ids: tuple[int, ...]
    figures: dict[int, grouped.InfrastructureFigures]
    unassigned: int
    counted_at: dt.datetime
    expires: float  # time.monotonic()

    @classmethod
    def now(cls, ids: list[int], keep_seconds: float = 0.0) -> _Counted:
        figures, unassigned = grouped.infrastructure(ids)
        return cls(tuple(ids), figures, unassigned, utcnow(), time.monotonic() + keep_seconds)


def _counted_infrastructure(ids: list[int]) -> _Counted:
    """The counts of every partner's locations, EVSEs and connectors read those tables whole (the most expensive
    part of the overview: about a second for 100,000 locations on a busy server), while they change slowly; the
    share available now may lag by as much. Kept per process, for the same list of partners."""
    keep = float(current_app.config.get("OPERATIONS_FIGURES_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))
    cached: _Counted | None = current_app.extensions.get(INFRASTRUCTURE_CACHE_KEY)
    if keep > 0 and cached is not None and cached.ids == tuple(ids) and time.monotonic() < cached.expires:
        return cached
    counted = _Counted.now(ids, keep)
    if keep > 0:
        current_app.extensions[INFRASTRUCTURE_CACHE_KEY] = counted
    return counted


def _partner_columns() -> list[Any]:
    """The partner's own columns and, per big table, the time of the partner's newest row in it."""
    return [
        Partner.id,
        Partner.name,
        Partner.status,
        Partner.is_hub,
        Partner.country_code,
        Partner.party_id,
        Partner.registered_at,
        Partner.endpoints,
        _newest(TariffVersion.received_at, TariffVersion.partner_id).label("tariffs_at"),
        _newest(ChargingSession.last_updated, ChargingSession.partner_id).label("sessions_at"),
        _newest(Cdr.received_at, Cdr.partner_id).label("cdrs_at"),
        _newest(TokenDelivery.delivered_at, TokenDelivery.partner_id).label("tokens_at"),
        _newest(Authorization.created_at, Authorization.partner_id).label("authorization_at"),
    ]


def _newest(column: InstrumentedAttribute[Any], partner_column: InstrumentedAttribute[Any]) -> Any:
    """The newest value of ``column`` among the partner's rows: a correlated subquery that the index on
    (partner_id, column) answers with one probe. Written as ORDER BY ... LIMIT 1 rather than ``max()``: SQLite
    only turns the latter into an index probe without a WHERE clause."""
    return (
        select(column)
        .where(partner_column == Partner.id, column.is_not(None))
        .order_by(column.desc())
        .limit(1)
        .correlate(Partner)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class _Figures:
    """The grouped results for a set of partners, put together per partner."""

    parties: dict[int, grouped.PartyFigures]
    infrastructure: dict[int, grouped.InfrastructureFigures]
    cursors: dict[int, list[Cursor]]
    tokens: dict[int, TokenPushes]
    quarantine: dict[int, dict[str, QuarantineCount]]
    authorizations: dict[int, list[ReasonCount]]

    @classmethod
    def of(cls, ids: list[int], since: dt.datetime, counted: _Counted) -> _Figures:
        return cls(
            parties=grouped.parties(ids),
            infrastructure=counted.figures,
            cursors=grouped.cursors(ids),
            tokens=grouped.token_pushes(ids),
            quarantine=grouped.quarantine(ids),
            authorizations=grouped.authorizations(ids, since),
        )

    def overview(self, row: Any) -> PartnerOverview:
        partner_id = row.id
        parties = self.parties.get(partner_id, grouped.PartyFigures(Parties(), None))
        infrastructure = self.infrastructure.get(partner_id, grouped.InfrastructureFigures(Infrastructure(), None))
        received: dict[str, dt.datetime | None] = {
            "locations": infrastructure.updated_at,
            "tariffs": row.tariffs_at,
            "sessions": row.sessions_at,
            "cdrs": row.cdrs_at,
        }
        if row.is_hub:
            received["hubclientinfo"] = parties.updated_at
        return PartnerOverview(
            id=partner_id,
            name=row.name,
            status=row.status,
            is_hub=row.is_hub,
            country_code=row.country_code,
            party_id=row.party_id,
            registered_at=row.registered_at,
            parties=parties.parties,
            infrastructure=infrastructure.infrastructure,
            received=received,
            sent={"tokens": row.tokens_at, "authorization": row.authorization_at},
            cursors=tuple(self.cursors.get(partner_id, [])),
            tokens=self.tokens.get(partner_id, TokenPushes()),
            quarantine_by_module=dict(self.quarantine.get(partner_id, {})),
            authorizations=Authorizations(tuple(self.authorizations.get(partner_id, [])), row.authorization_at),
            endpoints=_endpoints(row.endpoints),
        )


def _endpoints(endpoints: Any) -> tuple[tuple[str, str], ...]:
    """(identifier, role) of the endpoints the partner announced, as bounded strings (the JSON is theirs)."""
    found = set()
    for endpoint in endpoints if isinstance(endpoints, list) else []:
        if isinstance(endpoint, dict):
            found.add((str(endpoint.get("identifier") or "")[:40], str(endpoint.get("role") or "")[:20]))
    return tuple(sorted(found))
