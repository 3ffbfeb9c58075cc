"""The shortcuts the finder takes for speed give the answers it gave without them: prices kept per process follow
the tariff's content and the moment when it matters; the nearest-first walk of the index (PostgreSQL) equals the
growing circles, page for page (first pages and pages after a cursor, with every filter), also when it has to ask
again for more rows or hands a rare filter over to the circles; a first page costs two statements; JSON read as
text shows what the CPO sent."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import event

from app.audit.services import Actor
from app.db import utcnow
from app.extensions import db
from app.finder import services as finder_services
from app.finder.driver_plan import plan_for
from app.finder.filters import Current, Filters
from app.finder.power import connector_power_kw
from app.finder.prices import PriceUnknown, forget_cached_prices
from app.finder.queries import NearbyQuery
from app.finder.services import search_nearby
from app.finder.spatial import SpatialIndex, spatial_index
from app.plans import services as plan_services
from app.rating.estimates import estimate_for_connector
from app.roaming.models import TariffVersion
from app.roaming.receive.locations import get_location, upsert_location
from app.roaming.receive.tariffs import store_tariff
from tests.factories import make_user
from tests.finder.builders import (
    CCS_50KW,
    CCS_150KW,
    CHADEMO_50KW,
    STAMP,
    TYPE2_11KW,
    TYPE2_22KW,
    add_location,
    connector,
    energy_tariff,
    evse,
    location_object,
)

HERE = (52.09, 5.11)
TYPICAL = {"kwh": Decimal(20), "duration": dt.timedelta(minutes=45)}
NOON = dt.datetime(2026, 6, 3, 10, 0, tzinfo=dt.UTC)  # 12:00 in Amsterdam
MIDNIGHT = dt.datetime(2026, 6, 3, 22, 30, tzinfo=dt.UTC)  # 00:30 in Amsterdam

DAY_NIGHT = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "DAY-NIGHT",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.45, "vat": 21.0, "step_size": 1}],
            "restrictions": {"start_time": "07:00", "end_time": "23:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.29, "vat": 21.0, "step_size": 1}]},
    ],
    "last_updated": STAMP,
}


@pytest.fixture(autouse=True)
def _cold_caches():
    forget_cached_prices()
    yield
    forget_cached_prices()


def price_at(at: dt.datetime) -> Decimal:
    [item] = search_nearby(NearbyQuery(*HERE, radius_km=2), at=at).items
    return item.price.incl_vat


def test_a_time_of_day_tariff_is_priced_at_each_searchs_moment(db_session):
    store_tariff(DAY_NIGHT, partner=None, country_code="NL", party_id="TCP")
    location = add_location(HERE[0] + 0.001, HERE[1], evse("AC", connector(TYPE2_22KW, tariff_ids=["DAY-NIGHT"])))
    payg = plan_services.current_version("payg")
    stored = get_location("NL", "TCP", location.ocpi_id)
    day, night, day_again = price_at(NOON), price_at(MIDNIGHT), price_at(NOON)
    assert day > night and day == day_again  # the day price is not kept for the night
    for at, seen in ((NOON, day), (MIDNIGHT, night)):
        expected = estimate_for_connector(stored, "AC", "1", plan=payg, at=at, **TYPICAL)
        assert seen == expected.example_driver.incl_vat


def test_a_kept_price_follows_the_tariffs_content(db_session):
    version = energy_tariff("T1", "0.40")
    add_location(HERE[0] + 0.001, HERE[1], evse("AC", connector(TYPE2_22KW, tariff_ids=["T1"])))
    before = price_at(NOON)
    assert price_at(NOON) == before  # from the process's cache now
    # The same version (id, last_updated) with another content, as roaming stores a CPO's silent change.
    row = db.session.get(TariffVersion, version.id)
    changed = dict(row.data)
    changed["elements"] = [{"price_components": [{"type": "ENERGY", "price": 0.50, "vat": 21.0, "step_size": 1}]}]
    row.data = changed
    db.session.flush()
    after = price_at(NOON)
    assert after > before
    payg = plan_services.current_version("payg")
    [item] = search_nearby(NearbyQuery(*HERE, radius_km=2), at=NOON).items
    location = get_location(item.country_code, item.party_id, item.ocpi_id)
    assert after == estimate_for_connector(location, "AC", "1", plan=payg, at=NOON, **TYPICAL).example_driver.incl_vat


def test_connector_power_is_the_same_from_the_cache():
    first = connector_power_kw("AC_3_PHASE", 230, 32, None)
    assert first == Decimal("22.080") and connector_power_kw("AC_3_PHASE", 230, 32, None) == first
    assert connector_power_kw("AC_1_PHASE", 0, 0, 2_000_000_000) is None  # impossible figures stay refused


def _requires_earthdistance() -> None:
    if spatial_index() != SpatialIndex.EARTHDISTANCE:
        pytest.skip("the nearest-first walk uses PostgreSQL's earthdistance index (run with TEST_DATABASE_URL)")


def _cluster() -> None:
    """Thirty locations on a line, some at the same point, one unpublished, one with only a REMOVED EVSE."""
    for number in range(30):
        lat = HERE[0] + 0.0004 * (number // 2)  # pairs at the same point: ties ordered by id
        add_location(lat, HERE[1] + 0.0002 * number, evse("E", connector(TYPE2_22KW)), id=f"L{number}")
    add_location(HERE[0] + 0.0001, HERE[1], evse("E", connector(TYPE2_22KW)), id="HIDDEN", publish=False)
    add_location(HERE[0] + 0.0002, HERE[1], evse("E", connector(TYPE2_22KW), status="REMOVED"), id="GONE")


def _pages(query: NearbyQuery) -> list[tuple[str, Decimal | None]]:
    return [(item.ocpi_id, item.distance_km) for item in search_nearby(query, at=NOON).items]


@pytest.mark.parametrize("limit", [1, 5, 20, 40])
def test_the_nearest_walk_equals_the_circles(db_session, monkeypatch, limit):
    _requires_earthdistance()
    _cluster()
    query = NearbyQuery(*HERE, radius_km=10, limit=limit)
    walked = _pages(query)
    monkeypatch.setattr(finder_services, "_walk_applies", lambda _query: False)
    assert walked == _pages(query)
    assert "HIDDEN" not in {ocpi_id for ocpi_id, _ in walked} and "GONE" not in {ocpi_id for ocpi_id, _ in walked}


def test_the_nearest_walk_asks_again_when_its_rows_do_not_settle_the_page(db_session, monkeypatch):
    _requires_earthdistance()
    _cluster()
    asked = []
    real_walk = finder_services.walk

    def counting(lat, lon, filters, rows, floor=None):  # type: ignore[no-untyped-def]
        asked.append(rows)
        return real_walk(lat, lon, filters, rows, floor)

    monkeypatch.setattr(finder_services, "_KNN_SPARE_ROWS", -5)  # fewer rows than the page: it must ask again
    monkeypatch.setattr(finder_services, "walk", counting)
    query = NearbyQuery(*HERE, radius_km=10, limit=10)
    walked = _pages(query)
    assert len(asked) >= 2 and asked[1] >= asked[0] * 2
    monkeypatch.setattr(finder_services, "_walk_applies", lambda _query: False)
    assert walked == _pages(query)


def test_open_now_on_the_walk_equals_the_circles(db_session, monkeypatch):
    _requires_earthdistance()
    hours = {
        "twentyfourseven": False,
        "regular_hours": [{"weekday": 3, "period_begin": "08:00", "period_end": "18:00"}],
    }
    for number in range(12):
        extra = {"opening_times": hours} if number % 3 else {}  # every third: hours unknown, so kept
        add_location(HERE[0] + 0.0005 * number, HERE[1], evse("E", connector(TYPE2_22KW)), id=f"O{number}", **extra)
    for at in (NOON, MIDNIGHT):
        query = NearbyQuery(*HERE, radius_km=10, limit=5, filters=Filters(open_now=True))
        walked = [item.ocpi_id for item in search_nearby(query, at=at).items]
        with monkeypatch.context() as patched:
            patched.setattr(finder_services, "_walk_applies", lambda _query: False)
            assert walked == [item.ocpi_id for item in search_nearby(query, at=at).items]


# --- the walk for every nearest-first page (filters, cursors) -------------------------------------------------------

MIXED = [TYPE2_11KW, TYPE2_22KW, CCS_50KW, CCS_150KW, CHADEMO_50KW]


def _mixed_cluster() -> None:
    """Forty locations around HERE with every kind of connector, status, operator and opening hours, some at the
    same point, one unpublished and one with only a REMOVED EVSE."""
    office = {
        "twentyfourseven": False,
        "regular_hours": [{"weekday": 3, "period_begin": "08:00", "period_end": "18:00"}],
    }
    for number in range(40):
        kind, other = MIXED[number % 5], MIXED[(number * 3 + 1) % 5]
        status = "AVAILABLE" if number % 3 else "CHARGING"
        extra = {"opening_times": office} if number % 4 == 1 else {}
        add_location(
            HERE[0] + 0.0006 * (number // 2),
            HERE[1] + 0.0009 * ((number * 7) % 11),
            evse("E1", connector(kind, tariff_ids=["T1"]), status=status),
            evse("E2", connector(other, id="2", tariff_ids=["T2"])),
            id=f"M{number}",
            operator="Allego" if number % 6 == 0 else "Test Operator",
            **extra,
        )
    add_location(HERE[0] + 0.0002, HERE[1], evse("E", connector(CCS_150KW)), id="HIDDEN", publish=False)
    add_location(HERE[0] + 0.0003, HERE[1], evse("E", connector(CCS_150KW), status="REMOVED"), id="GONE")
    energy_tariff("T1", "0.39")
    energy_tariff("T2", "0.59")


def _all_pages(query: NearbyQuery) -> list[list[tuple[object, ...]]]:
    """Every page of the search through its cursors: per result what it shows that depends on the path taken."""
    pages, cursor = [], None
    while True:
        page = search_nearby(replace(query, cursor=cursor), at=NOON)
        pages.append(
            [
                (
                    item.ocpi_id,
                    item.distance_km,
                    item.priced_connector,
                    item.price.incl_vat if item.price else None,
                    tuple(c.matches for e in item.evses for c in e.connectors),
                )
                for item in page.items
            ]
        )
        cursor = page.next_cursor
        if cursor is None:
            return pages


FILTERED = [
    Filters(),
    Filters(current=Current.DC),
    Filters(current=Current.AC, min_power_kw=Decimal(20)),
    Filters(min_power_kw=Decimal(100)),
    Filters(connector_types=frozenset({"IEC_62196_T2"}), available_now=True),
    Filters(connector_types=frozenset({"CHADEMO"}), available_now=True, min_power_kw=Decimal(50)),
    Filters(operator="allego"),
    Filters(open_now=True, current=Current.DC),
]


@pytest.mark.parametrize("filters", FILTERED, ids=lambda f: f.fingerprint())
def test_walked_pages_with_filters_equal_the_circles(db_session, monkeypatch, filters):
    _requires_earthdistance()
    _mixed_cluster()
    query = NearbyQuery(*HERE, radius_km=10, limit=4, filters=filters)
    walked = _all_pages(query)
    monkeypatch.setattr(finder_services, "_walk_applies", lambda _query: False)
    assert walked == _all_pages(query)
    assert sum(len(page) for page in walked) > 0


def test_a_walk_hands_rare_filters_over_to_the_circles(db_session, monkeypatch):
    _requires_earthdistance()
    _mixed_cluster()
    handed = []
    real_nearest = finder_services._nearest

    def circles(query, after, at, first_km=None):  # type: ignore[no-untyped-def]
        handed.append(first_km)
        return real_nearest(query, after, at, first_km)

    query = NearbyQuery(*HERE, radius_km=10, limit=3, filters=Filters(min_power_kw=Decimal(100)))
    monkeypatch.setattr(finder_services, "_nearest", circles)
    monkeypatch.setattr(finder_services, "_KNN_SPARE_ROWS", 0)
    monkeypatch.setattr(finder_services, "_WALK_MAX_ROWS", 5)  # the first walk reads 4: the next would pass 5
    handed_over = _all_pages(query)
    assert handed and all(first_km is not None and first_km > 0 for first_km in handed)
    monkeypatch.setattr(finder_services, "_walk_applies", lambda _query: False)
    assert handed_over == _all_pages(query)


def test_a_first_page_costs_one_walk_and_one_read_of_the_prices(db_session):
    """One statement for the walk (locations, EVSEs, connectors), one for the tariff versions with the driver's
    plan; the tariffs' contents are kept by the process after the first search."""
    _requires_earthdistance()
    _mixed_cluster()
    query = NearbyQuery(*HERE, radius_km=10, limit=20)
    search_nearby(query, at=NOON)
    statements: list[str] = []

    def record(_connection, _cursor, statement, *_):  # type: ignore[no-untyped-def]
        statements.append(statement)

    connection = db.session.connection()
    event.listen(connection, "before_cursor_execute", record)
    try:
        page = search_nearby(query, at=NOON)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len(page.items) == 20 and page.items[0].price.plan_code == "payg"
    assert len(statements) == 2, statements


def test_coordinates_sent_as_numbers_are_shown_from_the_columns(db_session):
    obj = location_object(HERE[0] + 0.001, HERE[1], evse("E1", connector(TYPE2_22KW)), id="NUMBERS")
    obj["coordinates"] = {"latitude": 52.091, "longitude": 5.11}  # numbers: tolerated at intake
    upsert_location(obj, partner=None, country_code="NL", party_id="TCP")
    add_location(HERE[0] + 0.002, HERE[1], evse("E1", connector(TYPE2_22KW)), id="STRINGS")
    found = {item.ocpi_id: item for item in search_nearby(NearbyQuery(*HERE, radius_km=2), at=NOON).items}
    assert (found["NUMBERS"].latitude, found["NUMBERS"].longitude) == ("52.091", "5.11")
    assert (found["STRINGS"].latitude, found["STRINGS"].longitude) == (f"{HERE[0] + 0.002:.6f}", f"{HERE[1]:.6f}")


def test_a_page_without_tariffs_reads_the_plan_alone(db_session):
    add_location(HERE[0] + 0.001, HERE[1], evse("E1", connector(TYPE2_22KW)), id="NO-TARIFF")
    [item] = search_nearby(NearbyQuery(*HERE, radius_km=2), at=NOON).items
    assert item.price.unknown == PriceUnknown.NO_TARIFF and item.price.plan_code == "payg"


def test_the_plan_read_with_the_prices_is_the_drivers_plan_at_the_instant(db_session):
    """The plan comes as one more row of the prices' statement: the account's plan at the search's instant,
    Pay-as-you-go before its first stretch and for a visitor, as plan_for reads it."""
    energy_tariff("T1", "0.40")
    add_location(HERE[0] + 0.001, HERE[1], evse("E1", connector(TYPE2_22KW, tariff_ids=["T1"])))
    user = make_user()
    for stretch in plan_services.history(user.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    plan_services.change_plan(user.account, plan_services.current_version("comfort"), Actor.system("test"))
    db.session.flush()
    now = utcnow()
    for account, at in (
        (user.account, now),
        (user.account, now - dt.timedelta(days=1)),
        (user.account, dt.datetime(2025, 6, 1, tzinfo=dt.UTC)),
        (None, now),
    ):
        [item] = search_nearby(NearbyQuery(*HERE, radius_km=2), account=account, at=at).items
        assert item.price.plan_code == plan_for(account, at).code, (account, at)
    assert {plan_for(user.account, now).code, plan_for(user.account, now - dt.timedelta(days=1)).code} == {
        "comfort",
        "payg",
    }
