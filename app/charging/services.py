"""Read services over the charging records: which sessions are under way, which CDRs a driver's filters select,
and what a CDR itself says about where and how long the charging was.

Only what the records themselves tell. The place as the CPO published it is roaming's (``roaming.places``), the
price is rating's and the invoice billing's: those layers add it on top of these reads, which is why the
results carry the location's OCPI key rather than its name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import ColumnElement, select

from app.charging.models import Cdr, ChargingSession
from app.db import utcnow
from app.extensions import db

# The OCPI session statuses of charging under way: PENDING (authorized, not charging yet) and ACTIVE.
LIVE_STATUSES = ("PENDING", "ACTIVE")
# A session the CPO never closed (a lost COMPLETED update) must not show as "charging now" for ever.
LIVE_SESSION_MAX_AGE = dt.timedelta(hours=48)


class LocationKey(NamedTuple):
    """A location as OCPI identifies it: the CPO's party and the location's id (compared as stored)."""

    country_code: str
    party_id: str
    location_id: str


@dataclass(frozen=True)
class LiveSession:
    """What a driver sees of a session under way: since when, how much so far, at which charge point."""

    started_at: dt.datetime
    kwh: Decimal
    status: str
    evse_uid: str
    updated_at: dt.datetime
    location: LocationKey


def live_sessions_of(account_id: int, now: dt.datetime | None = None) -> list[LiveSession]:
    """The account's sessions under way (``PENDING`` or ``ACTIVE``, started in the last 48 hours), newest
    first. For the portal's dashboard and, later, the app."""
    now = now or utcnow()
    rows = db.session.execute(
        select(
            ChargingSession.start_date_time,
            ChargingSession.kwh,
            ChargingSession.status,
            ChargingSession.evse_uid,
            ChargingSession.last_updated,
            ChargingSession.country_code,
            ChargingSession.party_id,
            ChargingSession.location_ocpi_id,
        )
        .where(
            ChargingSession.account_id == account_id,
            ChargingSession.status.in_(LIVE_STATUSES),
            ChargingSession.start_date_time > now - LIVE_SESSION_MAX_AGE,
        )
        .order_by(ChargingSession.start_date_time.desc())
    )
    return [
        LiveSession(
            started_at=started,
            kwh=kwh,
            status=status,
            evse_uid=evse_uid,
            updated_at=updated,
            location=LocationKey(country_code, party_id, location_id),
        )
        for started, kwh, status, evse_uid, updated, country_code, party_id, location_id in rows
    ]


def cdr_filters(
    *, started_from: dt.datetime | None = None, started_before: dt.datetime | None = None, card_id: int | None = None
) -> list[ColumnElement[bool]]:
    """Conditions on ``Cdr`` for a driver's filters: charging started in ``[started_from, started_before)``
    (a month), with one of their cards. Left out, a bound or the card does not filter."""
    conditions: list[ColumnElement[bool]] = []
    if started_from is not None:
        conditions.append(Cdr.start_date_time >= started_from)
    if started_before is not None:
        conditions.append(Cdr.start_date_time < started_before)
    if card_id is not None:
        conditions.append(Cdr.card_id == card_id)
    return conditions


@dataclass(frozen=True)
class CdrPlace:
    """Where the charging took place, as the CDR itself names it (its ``cdr_location``)."""

    name: str  # the location's name, else its address, else its OCPI id
    city: str  # empty when the CDR does not say
    evse_id: str  # the EVSE's printed id, else its OCPI uid


def place_in_cdr(cdr: Cdr) -> CdrPlace:
    """The place as the CDR tells it: what a driver sees when the location is not (or no longer) published."""
    location = cdr.data.get("cdr_location") or {}
    return CdrPlace(
        name=location.get("name") or location.get("address") or cdr.location_ocpi_id,
        city=location.get("city") or "",
        evse_id=location.get("evse_id") or cdr.evse_uid,
    )


def duration_minutes(cdr: Cdr) -> int:
    """Whole minutes from the start to the end of the charging session (rounded down)."""
    return int((cdr.end_date_time - cdr.start_date_time).total_seconds() // 60)
