"""The read services over the charging records: which sessions are under way, which CDRs a driver's filters
select, and what a CDR says of its place and duration when the location is not known to us."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from app.accounts.models import Account
from app.audit.services import Actor
from app.cards import services as card_services
from app.charging.models import Cdr, ChargingSession
from app.charging.services import (
    LIVE_SESSION_MAX_AGE,
    CdrPlace,
    LocationKey,
    cdr_filters,
    duration_minutes,
    live_sessions_of,
    place_in_cdr,
)
from app.extensions import db
from tests.factories import make_user

NOW = dt.datetime(2026, 10, 15, 12, tzinfo=dt.UTC)


def _card():  # type: ignore[no-untyped-def]
    user = make_user()
    return card_services.issue_app_token(user.account, Actor.of(user))


def _session(
    card,
    ocpi_id: str,
    status: str,
    started: dt.datetime,
    *,  # type: ignore[no-untyped-def]
    party_id: str = "TCP",
    location: str = "LOC-1",
) -> ChargingSession:
    row = ChargingSession(
        country_code="NL",
        party_id=party_id,
        ocpi_id=ocpi_id,
        card_id=card.id,
        account_id=card.account_id,
        status=status,
        start_date_time=started,
        kwh=Decimal("4.5"),
        location_ocpi_id=location,
        evse_uid="E1",
        connector_id="1",
        currency="EUR",
        data={},
        last_updated=started + dt.timedelta(minutes=5),
    )
    db.session.add(row)
    db.session.flush()
    return row


def _cdr(
    card,
    ocpi_id: str,
    start: dt.datetime,
    minutes: float = 90,  # type: ignore[no-untyped-def]
    location: dict | None = None,
) -> Cdr:
    end = start + dt.timedelta(minutes=minutes)
    row = Cdr(
        country_code="NL",
        party_id="TCP",
        ocpi_id=ocpi_id,
        card_id=card.id,
        account_id=card.account_id,
        token_uid="X",
        start_date_time=start,
        end_date_time=end,
        location_ocpi_id="LOC-1",
        evse_uid="E1",
        country="NLD",
        currency="EUR",
        total_energy=Decimal("10"),
        total_time=Decimal("1.5"),
        total_cost_excl_vat=Decimal("3.50"),
        data={} if location is None else {"cdr_location": location},
        last_updated=end,
    )
    db.session.add(row)
    db.session.flush()
    return row


def test_live_sessions_are_pending_or_active_recent_ones_of_the_account_newest_first(db_session):
    card, stranger = _card(), _card()
    _session(card, "S-ACTIVE", "ACTIVE", NOW - dt.timedelta(hours=2), party_id="ABC", location="LOC-9")
    _session(card, "S-PENDING", "PENDING", NOW - dt.timedelta(minutes=1))
    _session(card, "S-DONE", "COMPLETED", NOW - dt.timedelta(minutes=30))
    _session(card, "S-INVALID", "INVALID", NOW - dt.timedelta(minutes=20))
    _session(card, "S-ZOMBIE", "ACTIVE", NOW - LIVE_SESSION_MAX_AGE - dt.timedelta(minutes=1))  # never closed
    _session(stranger, "S-OTHER", "ACTIVE", NOW - dt.timedelta(minutes=10))

    live = live_sessions_of(card.account_id, NOW)

    assert [session.status for session in live] == ["PENDING", "ACTIVE"]
    assert live[1].location == LocationKey("NL", "ABC", "LOC-9")  # the key roaming names the place by
    assert live[1].started_at == NOW - dt.timedelta(hours=2) and live[1].kwh == Decimal("4.5")
    assert live[1].updated_at == NOW - dt.timedelta(hours=2) + dt.timedelta(minutes=5)
    assert live[1].evse_uid == "E1"
    assert live_sessions_of(card.account_id, NOW + LIVE_SESSION_MAX_AGE) == []


def test_cdr_filters_select_a_month_and_a_card(db_session):
    card = _card()
    other_card = card_services.issue_app_token(db.session.get(Account, card.account_id), Actor.system("test"))
    october = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    november = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    _cdr(card, "C-SEP", october - dt.timedelta(seconds=1))
    _cdr(card, "C-OCT-FIRST", october)
    _cdr(other_card, "C-OCT-OTHER", october + dt.timedelta(days=3))
    _cdr(card, "C-NOV", november)

    def found(**filters):  # type: ignore[no-untyped-def]
        return set(
            db.session.scalars(select(Cdr.ocpi_id).where(Cdr.account_id == card.account_id, *cdr_filters(**filters)))
        )

    assert found() == {"C-SEP", "C-OCT-FIRST", "C-OCT-OTHER", "C-NOV"}  # no filter, no condition
    assert found(started_from=october, started_before=november) == {"C-OCT-FIRST", "C-OCT-OTHER"}
    assert found(started_from=october, started_before=november, card_id=card.id) == {"C-OCT-FIRST"}
    assert found(card_id=other_card.id) == {"C-OCT-OTHER"}


def test_a_cdr_names_its_place_and_duration_itself(db_session):
    card = _card()
    start = dt.datetime(2026, 10, 10, 8, tzinfo=dt.UTC)
    named = _cdr(
        card,
        "C-NAMED",
        start,
        minutes=61.9,
        location={"name": "Gent Zuid", "address": "Zuidstraat 1", "city": "Gent", "evse_id": "BE*BEC*E041503003"},
    )
    address_only = _cdr(card, "C-ADDRESS", start, location={"address": "Zuidstraat 1"})
    bare = _cdr(card, "C-BARE", start, minutes=0.5)

    assert place_in_cdr(named) == CdrPlace(name="Gent Zuid", city="Gent", evse_id="BE*BEC*E041503003")
    assert place_in_cdr(address_only) == CdrPlace(name="Zuidstraat 1", city="", evse_id="E1")
    assert place_in_cdr(bare) == CdrPlace(name="LOC-1", city="", evse_id="E1")  # the ids as a last resort
    assert duration_minutes(named) == 61 and duration_minutes(bare) == 0  # whole minutes, rounded down
