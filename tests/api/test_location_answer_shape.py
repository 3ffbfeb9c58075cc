"""The finder's answers are sent as the presenters write them, not dumped through marshmallow again (that walk cost
40% of a search's CPU): so every answer is held to its documented schema here. ``dump(load(answer)) == answer``
means every field is there with its type and nothing else is, and each value is written exactly as marshmallow
would write it (datetimes as ``isoformat()``): the OpenAPI document stays the truth about the JSON."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import Schema

from app.api.location_schemas import LocationOut, LocationPageOut
from app.extensions import db
from app.finder.route import encode_polyline
from tests.api.helpers import SignedIn, call
from tests.api.test_locations import NEARBY, ROUTE, north, on_plan
from tests.finder.builders import CCS_50KW, TYPE2_22KW, add_location, connector, energy_tariff, evse


def _shaped(schema: Schema, answer: dict[str, Any]) -> dict[str, Any]:
    return schema.dump(schema.load(answer))


def _get(client: Any, path: str, who: SignedIn | None = None) -> dict[str, Any]:
    response = call(client, "GET", path, who)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


@pytest.fixture
def places(db_session: object) -> None:
    """Every shape a result takes: known and unknown prices, a connector that does not match, opening hours with
    exceptions, a location without hours, one along the route."""
    energy_tariff("AC", "0.40")
    add_location(
        *north(1),
        evse("S1", connector(TYPE2_22KW, tariff_ids=["AC"])),
        evse("S2", connector(CCS_50KW, tariff_ids=["UNPUBLISHED"]), status="CHARGING"),
        id="SHAPE-1",
        name="Hours and prices",
        opening_times={
            "twentyfourseven": False,
            "regular_hours": [{"weekday": day, "period_begin": "07:00", "period_end": "22:00"} for day in range(1, 6)],
            "exceptional_openings": [{"period_begin": "2026-12-26T09:00:00Z", "period_end": "2026-12-26T17:00:00Z"}],
            "exceptional_closings": [{"period_begin": "2026-12-25T00:00:00Z", "period_end": "2026-12-26T00:00:00Z"}],
        },
    )
    add_location(*north(2), evse("T1", connector(CCS_50KW)), id="SHAPE-2", name=None)
    add_location(52.10, 5.111, evse("R1", connector(CCS_50KW, tariff_ids=["AC"])), id="SHAPE-3", name="On the way")
    db.session.commit()


@pytest.mark.parametrize(
    "query",
    ["&radius_km=5", "&radius_km=5&power_type=DC", "&radius_km=5&sort=price", "&radius_km=5&limit=1"],
)
def test_nearby_answers_are_what_their_schema_documents(client, places, query):
    answer = _get(client, NEARBY + query)
    assert answer["items"], "a shape test over nothing"
    assert _shaped(LocationPageOut(), answer) == answer


def test_a_drivers_answers_and_one_location_are_what_their_schemas_document(client, places, driver):
    on_plan(driver, "comfort")
    nearby = _get(client, NEARBY + "&radius_km=5", driver)
    assert _shaped(LocationPageOut(), nearby) == nearby
    priced = [item["price"] for item in nearby["items"] if item["price"]]
    assert {price["status"] for price in priced} == {"known", "unknown"}  # both shapes were checked
    hours = next(item["opening_hours"] for item in nearby["items"] if item["id"] == "SHAPE-1")
    assert hours["exceptional_openings"] and hours["exceptional_closings"]
    one = _get(client, "/api/v1/locations/nl/tcp/shape-1?lat=52.09&lon=5.11", driver)
    assert _shaped(LocationOut(), one) == one


def test_route_answers_are_what_their_schema_documents(client, places):
    answer = _get(client, f"/api/v1/locations/along-route?polyline={encode_polyline(ROUTE)}&corridor_km=2")
    assert {item["id"] for item in answer["items"]} == {"SHAPE-1", "SHAPE-2", "SHAPE-3"}  # all on the way north
    assert all(item["along_route_km"] is not None for item in answer["items"])
    assert _shaped(LocationPageOut(), answer) == answer
