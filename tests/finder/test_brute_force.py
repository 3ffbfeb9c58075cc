"""The finder on the real Dutch data (7,609 locations, 994 tariffs): its answers equal a brute-force scan of every
location, and its prices equal the rating estimate, connector by connector.

The brute force reads the OCPI file itself, not the database: every location that is published and has an EVSE
that is not REMOVED, measured from the point with the haversine formula (all of them), the near ones then with the
geodesic distance, ordered by (distance, id). The finder must give exactly that list, through its index, its
growing circles and its pages. Against the haversine distance alone the sets may differ only where the two
formulas disagree: locations within 0.6 % of the radius. Cheapest first, read by a statement of its own, orders
exactly the locations nearest first finds, at the prices it shows.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from app.db import utcnow
from app.extensions import db
from app.finder.distance import geodesic_km, haversine_km
from app.finder.filters import NO_FILTERS, Current, Filters
from app.finder.power import connector_power_w
from app.finder.prices import PriceUnknown
from app.finder.queries import NearbyQuery, SortOrder
from app.finder.results import price_order
from app.finder.services import search_nearby
from app.plans.services import current_version, seed_default_plans
from app.rating.estimates import estimate_for_connector
from app.rating.services import RatingError
from app.roaming.models import Location
from app.roaming.receive.importers import import_locations, import_tariffs
from app.roaming.receive.locations import get_location
from tests.shared_data import NL_DATA

Key = tuple[str, str, str]


@pytest.fixture(scope="module")
def shared_objects() -> list[dict[str, Any]]:
    return json.loads(gzip.decompress((NL_DATA / "locations.json.gz").read_bytes()))


@pytest.fixture(scope="module")
def shared_data(app: Flask) -> Iterator[None]:
    """The shared data imported once for the module, with the importers (so through roaming's store path and
    the index's triggers), inside a transaction rolled back at the end, as ``db_session`` does per test."""
    with app.app_context():
        engines = db.engines
        originals = dict(engines)
        connection = originals[None].connect()
        outer = connection.begin()
        engines[None] = connection
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
        try:
            seed_default_plans()
            assert import_locations(NL_DATA / "locations.json.gz", batch_size=1000).failed == 0
            assert import_tariffs(NL_DATA / "tariffs.json.gz").failed == 0
            yield
        finally:
            db.session.remove()
            outer.rollback()
            connection.close()
            engines.update(originals)


def position(obj: dict[str, Any]) -> tuple[float, float]:
    return float(obj["coordinates"]["latitude"]), float(obj["coordinates"]["longitude"])


def key_of(obj: dict[str, Any]) -> Key:
    return (obj["country_code"], obj["party_id"], obj["id"].upper())


def brute_force(
    objects: list[dict[str, Any]], lat: float, lon: float, radius_km: float, keep=lambda connector, evse: True
) -> list[tuple[float, Key]]:
    """Every shown location within the radius, by (geodesic distance, key): no index, no shortcut but the safe
    haversine prefilter (1 % wider than any difference between the two formulas)."""
    found = []
    for obj in objects:
        live = [e for e in obj.get("evses", []) if e["status"] != "REMOVED"]
        if not obj["publish"] or not any(keep(c, e) for e in live for c in e["connectors"]):
            continue
        here = position(obj)
        if haversine_km(lat, lon, *here) > radius_km * 1.01:
            continue
        exact = geodesic_km(lat, lon, *here)
        if exact <= radius_km:
            found.append((exact, key_of(obj)))
    return found


def finder(lat: float, lon: float, radius_km: float, filters: Filters = NO_FILTERS, limit: int = 100) -> list[Key]:
    keys, cursor = [], None
    while True:
        page = search_nearby(NearbyQuery(lat, lon, radius_km=radius_km, limit=limit, filters=filters, cursor=cursor))
        keys += [(item.country_code, item.party_id, item.ocpi_id.upper()) for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return keys


def random_points(objects: list[dict[str, Any]], count: int, seed: int) -> list[tuple[float, float]]:
    """Points spread like the data (a location, moved up to ~10 km) and a few anywhere in its bounding box."""
    rng = random.Random(seed)
    points = []
    for _ in range(count):
        obj = rng.choice(objects)
        points.append(
            (
                float(obj["coordinates"]["latitude"]) + rng.uniform(-0.09, 0.09),
                float(obj["coordinates"]["longitude"]) + rng.uniform(-0.14, 0.14),
            )
        )
    points += [(rng.uniform(50.75, 53.35), rng.uniform(3.9, 7.1)) for _ in range(3)]
    return points


def test_nearest_equal_a_brute_force_scan(shared_data, shared_objects):
    ids_by_key = {}
    for obj in shared_objects:
        ids_by_key.setdefault(key_of(obj), obj)
    by_id = {}  # the brute force orders ties by our row id: ask the database for it once
    for location_id, country_code, party_id, key in db.session.execute(
        db.select(Location.id, Location.country_code, Location.party_id, Location.ocpi_id_key)
    ):
        by_id[(country_code, party_id, key)] = location_id
    compared = 0
    for lat, lon in random_points(shared_objects, 12, seed=14):
        for radius in (0.7, 3.0, 10.0):
            expected = sorted(brute_force(shared_objects, lat, lon, radius), key=lambda hit: (hit[0], by_id[hit[1]]))
            assert finder(lat, lon, radius, limit=40) == [k for _, k in expected], (lat, lon, radius)
            compared += len(expected)
            # Against the haversine distance alone: the same set, but where the two formulas straddle the radius.
            spherical = {
                key_of(obj)
                for obj in shared_objects
                if obj["publish"]
                and any(e["status"] != "REMOVED" for e in obj.get("evses", []))
                and haversine_km(
                    lat, lon, float(obj["coordinates"]["latitude"]), float(obj["coordinates"]["longitude"])
                )
                <= radius
            }
            for key in spherical.symmetric_difference(k for _, k in expected):
                obj = ids_by_key[key]
                h = haversine_km(
                    lat, lon, float(obj["coordinates"]["latitude"]), float(obj["coordinates"]["longitude"])
                )
                assert abs(h - radius) <= radius * 0.006
    assert compared > 2000  # the points do fall among the chargers


def test_filtered_search_equals_a_brute_force_scan(shared_data, shared_objects):
    def fast_free_dc(connector: dict[str, Any], evse: dict[str, Any]) -> bool:
        watts = connector_power_w(
            connector["power_type"],
            connector["max_voltage"],
            connector["max_amperage"],
            connector.get("max_electric_power"),
        )
        return connector["power_type"] == "DC" and evse["status"] == "AVAILABLE" and (watts or 0) >= 50_000

    filters = Filters(current=Current.DC, available_now=True, min_power_kw=Decimal(50))
    for lat, lon in random_points(shared_objects, 6, seed=7):
        expected = brute_force(shared_objects, lat, lon, 25.0, keep=fast_free_dc)
        found = finder(lat, lon, 25.0, filters)
        assert set(found) == {k for _, k in expected}
        assert len(found) == len(set(found))


def test_prices_equal_the_rating_estimate(shared_data, shared_objects):
    payg = current_version("payg")
    at = utcnow()
    typical = {"kwh": Decimal(20), "duration": dt.timedelta(minutes=45)}
    known = unknown = 0
    for lat, lon in random_points(shared_objects, 5, seed=3):
        for item in search_nearby(NearbyQuery(lat, lon, radius_km=5, limit=20), at=at).items:
            stored = get_location(item.country_code, item.party_id, item.ocpi_id)
            for evse in item.evses:
                for connector in evse.connectors:
                    try:
                        expected = estimate_for_connector(stored, evse.uid, connector.id, plan=payg, at=at, **typical)
                    except RatingError:  # the rating says "no tariff in force": the finder says so too
                        assert connector.price.unknown == PriceUnknown.NO_TARIFF
                        unknown += 1
                        continue
                    assert connector.price.estimate == expected
                    known += 1
    assert known > 50 and unknown > 0  # both cases occur in the real data


def test_cheapest_first_orders_the_nearest_first_results_by_price(shared_data, shared_objects):
    """Cheapest first reads the candidates and their price keys in one statement of its own: it must order the
    very locations nearest first finds, each at the price nearest first shows for it, cheapest first (unknown
    prices last), by distance within a price, with pages that follow each other."""
    at = utcnow()
    compared = 0
    for lat, lon in random_points(shared_objects, 4, seed=11):
        nearest: dict[Key, tuple[tuple[int, Decimal], Decimal]] = {}
        cursor = None
        while True:
            page = search_nearby(NearbyQuery(lat, lon, radius_km=3, limit=100, cursor=cursor), at=at)
            for item in page.items:
                nearest[(item.country_code, item.party_id, item.ocpi_id.upper())] = (
                    price_order(item.price),
                    item.distance_km,
                )
            if (cursor := page.next_cursor) is None:
                break
        cheapest: list[tuple[Key, tuple[int, Decimal], Decimal]] = []
        cursor = None
        while True:
            query = NearbyQuery(lat, lon, radius_km=3, limit=25, sort=SortOrder.PRICE, cursor=cursor)
            page = search_nearby(query, at=at)
            cheapest += [
                ((item.country_code, item.party_id, item.ocpi_id.upper()), price_order(item.price), item.distance_km)
                for item in page.items
            ]
            if (cursor := page.next_cursor) is None:
                break
        compared += len(cheapest)
        assert len({key for key, _, _ in cheapest}) == len(cheapest)
        assert {key: (order, distance) for key, order, distance in cheapest} == nearest
        assert [(order, distance) for _, order, distance in cheapest] == sorted(
            (order, distance) for _, order, distance in cheapest
        )
    assert compared > 100  # the points do fall among the chargers
