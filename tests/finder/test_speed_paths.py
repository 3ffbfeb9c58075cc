"""The shortcuts the finder takes for speed give the answers it gave without them: prices kept per process follow
the tariff's content and the moment when it matters; the nearest-first walk of the index (PostgreSQL) equals the
growing circles, page for page, also when it has to ask again for more rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.extensions import db
from app.finder import services as finder_services
from app.finder.filters import Filters
from app.finder.power import connector_power_kw
from app.finder.prices import forget_cached_prices
from app.finder.queries import NearbyQuery
from app.finder.services import search_nearby
from app.finder.spatial import SpatialIndex, spatial_index
from app.plans import services as plan_services
from app.rating.estimates import estimate_for_connector
from app.roaming.models import TariffVersion
from app.roaming.receive.locations import get_location
from app.roaming.receive.tariffs import store_tariff
from tests.finder.builders import STAMP, TYPE2_22KW, add_location, connector, energy_tariff, evse

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
    monkeypatch.setattr(finder_services, "_knn_applies", lambda _query: False)
    assert walked == _pages(query)
    assert "HIDDEN" not in {ocpi_id for ocpi_id, _ in walked} and "GONE" not in {ocpi_id for ocpi_id, _ in walked}


def test_the_nearest_walk_asks_again_when_its_rows_do_not_settle_the_page(db_session, monkeypatch):
    _requires_earthdistance()
    _cluster()
    asked = []
    real_nearest = finder_services.nearest

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(args[-1])
        return real_nearest(*args, **kwargs)

    monkeypatch.setattr(finder_services, "_KNN_SPARE_ROWS", -5)  # fewer rows than the page: it must ask again
    monkeypatch.setattr(finder_services, "nearest", counting)
    query = NearbyQuery(*HERE, radius_km=10, limit=10)
    walked = _pages(query)
    assert len(asked) >= 2 and asked[1] == asked[0] * 4
    monkeypatch.setattr(finder_services, "_knn_applies", lambda _query: False)
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
            patched.setattr(finder_services, "_knn_applies", lambda _query: False)
            assert walked == [item.ocpi_id for item in search_nearby(query, at=at).items]
