"""``/api/v1/locations``: the finder for the app. Near a point and along a route with every filter, pages without
duplicates or gaps, sorted by the caller's price, one location by its OCPI ids in any case; unpublished and removed
never shown; a visitor's price is Pay-as-you-go and a driver's their plan's, the same figure as the finder's; bad
parameters are a 400 naming them; anonymous use is welcome and rate-limited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.audit.services import Actor
from app.extensions import db, limiter
from app.finder.filters import Filters
from app.finder.route import encode_polyline
from app.finder.services import location_details
from app.money import to_minor_units
from app.plans import services as plan_services
from app.roaming.models import Location
from tests.api.helpers import SignedIn, call, problem
from tests.finder.builders import (
    CCS_50KW,
    CCS_150KW,
    CHADEMO_50KW,
    TYPE2_11KW,
    TYPE2_22KW,
    add_location,
    add_partner,
    connector,
    energy_tariff,
    evse,
)

HERE = (52.0900, 5.1100)  # Utrecht
STEP = 0.001  # ~111 m of latitude
NEARBY = f"/api/v1/locations/nearby?lat={HERE[0]}&lon={HERE[1]}"


def north(steps: float) -> tuple[float, float]:
    return (HERE[0] + STEP * steps, HERE[1])


def names(answer: dict[str, Any]) -> list[str]:
    return [item["name"] for item in answer["items"]]


def get(client: FlaskClient, path: str, who: SignedIn | None = None, **kwargs: Any) -> dict[str, Any]:
    response = call(client, "GET", path, who, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    body: dict[str, Any] = response.get_json()
    return body


@pytest.fixture
def config(app: Flask) -> Iterator[dict[str, Any]]:
    saved = dict(app.config)
    yield app.config
    app.config.clear()
    app.config.update(saved)


@pytest.fixture
def street(db_session: object) -> dict[str, Location]:
    """North of HERE, nearest first: A, B, C, F are shown; D (unpublished) and E (removed) never. Priced: A's Type 2
    (0.40/kWh) and CCS (0.59/kWh), B's CCS (0.30/kWh); C and F name tariffs nobody published."""
    energy_tariff("AC", "0.40")
    energy_tariff("DC", "0.59")
    energy_tariff("CHEAP", "0.30")
    found = {
        "A": add_location(
            *north(1),
            evse("A1", connector(TYPE2_22KW, tariff_ids=["AC"])),
            evse("A2", connector(CCS_150KW, tariff_ids=["DC"]), status="CHARGING"),
            id="LOC-A",
            name="A",
        ),
        "B": add_location(*north(2), evse("B1", connector(CCS_50KW, tariff_ids=["CHEAP"])), id="LOC-B", name="B"),
        "C": add_location(
            *north(3),
            evse("C1", connector(CHADEMO_50KW, tariff_ids=["GONE"])),
            evse("C2", connector(TYPE2_11KW), status="OUTOFORDER"),
            id="LOC-C",
            name="C",
        ),
        "D": add_location(*north(4), evse("D1", connector(CCS_150KW)), id="LOC-D", name="D", publish=False),
        "E": add_location(*north(5), evse("E1", connector(CCS_150KW), status="REMOVED"), id="LOC-E", name="E"),
        "F": add_location(
            *north(6),
            evse("F1", connector(TYPE2_11KW)),
            id="LOC-F",
            name="F",
            operator="Allego",
            opening_times={
                "twentyfourseven": False,
                "regular_hours": [
                    {"weekday": day, "period_begin": "08:00", "period_end": "18:00"} for day in range(1, 8)
                ],
            },
        ),
    }
    db.session.commit()
    return found


def on_plan(driver: SignedIn, code: str) -> None:
    for stretch in plan_services.history(driver.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    plan_services.change_plan(driver.account, plan_services.current_version(code), Actor.system("test"))
    db.session.commit()


# --- near a point -------------------------------------------------------------------------------------------------


def test_nearby_answers_the_published_locations_nearest_first_as_the_app_needs_them(client, street):
    answer = get(client, NEARBY + "&radius_km=5")
    assert names(answer) == ["A", "B", "C", "F"] and answer["next"] is None
    first = answer["items"][0]
    assert (first["id"], first["country_code"], first["party_id"]) == ("LOC-A", "NL", "TCP")
    assert first["number"] == street["A"].id
    assert first["coordinates"] == {"latitude": f"{north(1)[0]:.6f}", "longitude": f"{north(1)[1]:.6f}"}
    assert first["address"].startswith("Teststraat") and first["city"] == "Utrecht"
    assert Decimal(first["distance_km"]) == Decimal("0.111")  # 0.001° of latitude, geodesic, to the metre
    assert first["max_power_kw"] == "150" and first["operator"] == "Test Operator"
    evses = {e["uid"]: e for e in first["evses"]}
    assert evses["A1"]["status"] == "AVAILABLE" and evses["A2"]["status"] == "CHARGING"
    assert evses["A1"]["status_updated_at"].startswith("2026-01-01T00:00:00")
    ccs = evses["A2"]["connectors"][0]
    assert (ccs["label"], ccs["current"], ccs["power_kw"], ccs["matches"]) == ("CCS", "DC", "150", True)
    assert ccs["price"]["status"] == "known" and ccs["tariff"]["text"].startswith("€0.59")
    point = ",".join(format(Decimal(f"{value:.6f}").normalize(), "f") for value in north(1))
    assert first["navigation"] == {
        "google": f"https://www.google.com/maps/dir/?api=1&destination={point}",
        "apple": f"https://maps.apple.com/?daddr={point}",
        "waze": f"https://waze.com/ul?ll={point}&navigate=yes",
        "osm": f"https://www.openstreetmap.org/directions?engine=fossgis_osrm_car&route=;{point}",
        "geo": f"geo:{point}",
    }
    # A's cheapest matching connector is the Type 2: the price and the tariff in words are its.
    assert first["priced_connector"] == {"evse_uid": "A1", "connector_id": "1"}
    assert first["tariff"]["text"].startswith("€0.40")
    hours = answer["items"][3]
    assert hours["open_now"] in (True, False) and hours["opening_hours"]["time_zone"] == "Europe/Amsterdam"
    assert hours["opening_hours"]["regular_hours"][0] == {"weekday": 1, "begin": "08:00", "end": "18:00"}
    assert first["open_now"] is None and first["opening_hours"] is None  # no hours published: unknown


def test_filters_combine_and_the_connector_ones_hold_for_the_same_connector(client, street):
    def found(query: str) -> list[str]:
        return names(get(client, f"{NEARBY}&radius_km=5&{query}"))

    assert found("connector=ccs") == ["A", "B"]
    assert found("connector=chademo,type2") == ["A", "C", "F"]
    assert found("connector=CCS&min_power_kw=100") == ["A"]
    assert found("connector=ccs&available=true") == ["B"]  # A's CCS is charging
    assert found("connector=ccs&min_power_kw=100&available=true") == []
    assert found("power_type=DC&available=true&min_power_kw=50") == ["B", "C"]
    assert found("power_type=AC&min_power_kw=20") == ["A"]
    assert found("operator=ALLEGO") == ["F"]
    assert found("operator=allego&power_type=DC") == []


def test_pages_follow_each_other_without_duplicates_or_gaps(client, db_session):
    for step in range(23):
        add_location(*north(step * 0.7), name=f"Spot {step:02d}")
    db.session.commit()
    everything = names(get(client, NEARBY + "&limit=100"))
    assert len(everything) == 23
    seen: list[str] = []
    path = NEARBY + "&limit=5&connector=type2"
    pages = 0
    while path:
        answer = get(client, path)
        seen += names(answer)
        pages += 1
        path = NEARBY + f"&limit=5&connector=type2&cursor={answer['next']}" if answer["next"] else ""
    assert seen == everything and pages == 5


def test_sort_by_price_is_the_callers_price_cheapest_first_and_unknown_last(client, street):
    answer = get(client, NEARBY + "&radius_km=5&sort=price")
    assert names(answer) == ["B", "A", "C", "F"]
    totals = [item["price"]["total"] for item in answer["items"]]
    assert totals[0]["amount_minor"] < totals[1]["amount_minor"] and totals[2:] == [None, None]
    unknown = answer["items"][2]["price"]
    assert unknown["status"] == "unknown" and unknown["unknown_reason"] == "no_tariff"
    assert unknown["message"] and unknown["total"] is None
    # Paged one at a time, the same order.
    seen, cursor = [], None
    while True:
        page = get(client, NEARBY + "&radius_km=5&sort=price&limit=1" + (f"&cursor={cursor}" if cursor else ""))
        seen += names(page)
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ["B", "A", "C", "F"]


# --- prices -------------------------------------------------------------------------------------------------------


def test_a_visitor_gets_pay_as_you_go_and_a_driver_the_price_of_their_plan(client, street, driver):
    on_plan(driver, "comfort")
    visitor = get(client, NEARBY + "&connector=ccs&limit=1")["items"][0]["price"]
    theirs = get(client, NEARBY + "&connector=ccs&limit=1", driver)["items"][0]["price"]
    assert visitor["plan"] == "payg" and theirs["plan"] == "comfort"
    ccs = Filters(connector_types=frozenset({"IEC_62196_T2_COMBO"}))
    payg = location_details("NL", "TCP", "LOC-A", filters=ccs)
    comfort = location_details("NL", "TCP", "LOC-A", account=driver.account, filters=ccs)
    assert payg is not None and comfort is not None and payg.price and comfort.price
    for shown, computed in ((visitor, payg.price), (theirs, comfort.price)):
        assert computed.incl_vat is not None and computed.currency == "EUR"
        assert shown["total"] == {"amount_minor": to_minor_units(computed.incl_vat, "EUR"), "currency": "EUR"}
        assert shown["kwh"] == format(computed.kwh.normalize(), "f") and shown["minutes"] == computed.minutes
        assert shown["vat_rate"] == format(computed.vat_rate.normalize(), "f")
    assert visitor["total"] != theirs["total"]


def test_the_details_of_one_location_price_it_for_the_caller(client, street, driver):
    on_plan(driver, "comfort")
    visitor = get(client, "/api/v1/locations/NL/TCP/LOC-B")
    mine = get(client, "/api/v1/locations/NL/TCP/LOC-B", driver)
    comfort = location_details("NL", "TCP", "LOC-B", account=driver.account)
    assert comfort is not None and comfort.price is not None and comfort.price.incl_vat is not None
    assert mine["price"]["total"]["amount_minor"] == to_minor_units(comfort.price.incl_vat, "EUR")
    assert visitor["price"]["plan"] == "payg" and mine["price"]["plan"] == "comfort"
    assert visitor["distance_km"] is None
    near = get(client, f"/api/v1/locations/NL/TCP/LOC-B?lat={HERE[0]}&lon={HERE[1]}")
    assert abs(Decimal(near["distance_km"]) - Decimal("0.2225")) < Decimal("0.002")  # 0.002° of latitude


# --- one location -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["NL/TCP/LOC-A", "nl/tcp/loc-a", "Nl/tCp/Loc-A"])
def test_a_location_is_found_by_its_ocpi_ids_in_any_case(client, street, path):
    found = get(client, f"/api/v1/locations/{path}")
    assert (found["id"], found["name"]) == ("LOC-A", "A")


@pytest.mark.parametrize("path", ["NL/TCP/LOC-D", "NL/TCP/LOC-E", "NL/TCP/NOPE", "BE/TCP/LOC-A", "NL/TCP/LOC-A%00"])
def test_unpublished_removed_and_unknown_locations_are_not_found(client, street, path):
    problem(client.get(f"/api/v1/locations/{path}"), 404, "location_not_found")


def test_the_connector_filters_choose_what_a_location_is_priced_at(client, street):
    dc = get(client, "/api/v1/locations/NL/TCP/LOC-A?power_type=DC")
    assert dc["priced_connector"] == {"evse_uid": "A2", "connector_id": "1"}
    assert dc["tariff"]["text"].startswith("€0.59")
    nothing = get(client, "/api/v1/locations/NL/TCP/LOC-A?connector=chademo")
    assert nothing["price"] is None and nothing["priced_connector"] is None


# --- along a route ------------------------------------------------------------------------------------------------

ROUTE = [(52.09, 5.11), (52.19, 5.11), (52.19, 5.31)]  # north for 11 km, then east for 13.6 km


@pytest.fixture
def along(db_session: object) -> None:
    add_location(52.15, 5.125, name="6.7 km along, 1 km off")
    add_location(52.10, 5.111, evse("D1", connector(CCS_50KW)), name="1.1 km along, 70 m off")
    add_location(52.15, 5.16, name="3.4 km off: outside")
    add_location(52.185, 5.20, evse("D1", connector(CCS_50KW)), name="second leg, 0.55 km off")
    add_location(52.08, 5.11, name="before the start, 1.1 km off")
    add_location(52.12, 5.11, name="hidden", publish=False)
    db.session.commit()


def test_along_a_route_in_route_order_with_filters_and_pages(client, along):
    path = f"/api/v1/locations/along-route?polyline={encode_polyline(ROUTE)}&corridor_km=2"
    answer = get(client, path)
    assert names(answer) == [
        "before the start, 1.1 km off",
        "1.1 km along, 70 m off",
        "6.7 km along, 1 km off",
        "second leg, 0.55 km off",
    ]
    along_km = [Decimal(item["along_route_km"]) for item in answer["items"]]
    assert along_km == sorted(along_km)
    assert Decimal(answer["items"][1]["distance_km"]) < Decimal("0.1")  # from the route
    assert names(get(client, path + "&power_type=DC")) == ["1.1 km along, 70 m off", "second leg, 0.55 km off"]
    seen, cursor = [], None
    while True:
        page = get(client, path + "&limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += names(page)
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == names(answer)


# --- who asks -----------------------------------------------------------------------------------------------------


def test_works_with_my_card_needs_a_signed_in_driver(client, street, driver):
    refused = problem(client.get(NEARBY + "&my_cards=true"), 401, "sign_in_required")
    assert "my_cards" in refused["errors"]
    # No partner of ours reaches the test operator yet; a hub relaying it makes its locations work with our cards.
    assert names(get(client, NEARBY + "&my_cards=true", driver)) == []
    add_partner("Test hub", "HUB", is_hub=True, relays=(("TCP", "CONNECTED"),))
    db.session.commit()
    assert names(get(client, NEARBY + "&my_cards=true&radius_km=5", driver)) == ["A", "B", "C", "F"]


def test_a_bad_token_is_refused_not_treated_as_a_visitor(client, street):
    response = client.get(NEARBY, headers={"Authorization": "Bearer not-a-token"})
    problem(response, 401, "invalid_token")


def test_the_operations_are_public_in_the_openapi_document(client, db_session):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/locations/nearby",
        "/api/v1/locations/along-route",
        "/api/v1/locations/{country_code}/{party_id}/{id}",
        "/api/v1/geocode",
    ):
        assert paths[path]["get"]["security"] == [], path
        assert "400" in paths[path]["get"]["responses"], path


def test_visitors_are_rate_limited_per_address_and_drivers_per_account(client, street, driver, other_driver, config):
    config["FINDER_API_RATE_LIMIT"] = "3 per minute"
    with client.application.app_context():
        limiter.reset()
    statuses = [client.get(NEARBY).status_code for _ in range(2)] + [client.get("/api/v1/geocode?q=Gent").status_code]
    assert statuses == [200, 200, 200]
    limited = problem(client.get("/api/v1/locations/NL/TCP/LOC-A"), 429, "too_many_requests")  # one budget
    assert limited["status"] == 429
    # A signed-in driver has a budget of their own, not the address's.
    assert [call(client, "GET", NEARBY, driver).status_code for _ in range(3)] == [200, 200, 200]
    problem(call(client, "GET", NEARBY, driver), 429, "too_many_requests")
    assert call(client, "GET", NEARBY, other_driver).status_code == 200


# --- bad parameters -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("lon=5.1", "lat"),
        ("lat=95&lon=5", "lat"),
        ("lat=52&lon=east", "lon"),
        ("lat=52&lon=5&radius_km=500", "radius_km"),
        ("lat=52&lon=5&radius_km=0", "radius_km"),
        ("lat=52&lon=5&limit=0", "limit"),
        ("lat=52&lon=5&limit=101", "limit"),
        ("lat=52&lon=5&sort=cheapest", "sort"),
        ("lat=52&lon=5&connector=warp", "connector"),
        ("lat=52&lon=5&min_power_kw=-1", "min_power_kw"),
        ("lat=52&lon=5&min_power_kw=NaN", "min_power_kw"),
        ("lat=52&lon=5&power_type=XX", "power_type"),
        ("lat=52&lon=5&available=maybe", "available"),
        ("lat=52&lon=5&operator=%01", "operator"),
        ("lat=52&lon=5&cursor=not-a-cursor", "cursor"),
    ],
)
def test_bad_nearby_parameters_answer_400_naming_the_parameter(client, street, query, parameter):
    body = problem(client.get(f"/api/v1/locations/nearby?{query}"), 400, "invalid_parameter")
    assert list(body["errors"]) == [parameter] and body["errors"][parameter]


def test_a_cursor_of_another_search_is_refused(client, street):
    first = get(client, NEARBY + "&radius_km=5&limit=1")
    assert first["next"]
    body = problem(
        client.get(NEARBY + f"&radius_km=5&limit=1&sort=price&cursor={first['next']}"), 400, "invalid_parameter"
    )
    assert list(body["errors"]) == ["cursor"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("corridor_km=2", "polyline"),
        ("polyline=%20%20", "polyline"),
        ("polyline=_p~iF", "polyline"),  # a latitude without its longitude
        ("polyline=_p~iF~ps|U&corridor_km=0", "corridor_km"),
        ("polyline=_p~iF~ps|U&corridor_km=26", "corridor_km"),
        ("polyline=_p~iF~ps|U&connector=ccs,nope", "connector"),
    ],
)
def test_bad_route_parameters_answer_400_naming_the_parameter(client, along, query, parameter):
    body = problem(client.get(f"/api/v1/locations/along-route?{query}"), 400, "invalid_parameter")
    assert list(body["errors"]) == [parameter]


def test_a_location_with_half_an_origin_names_the_missing_half(client, street):
    body = problem(client.get("/api/v1/locations/NL/TCP/LOC-A?lat=52.1"), 400, "invalid_parameter")
    assert list(body["errors"]) == ["lon"]


def test_bad_parameters_change_nothing_and_are_told_in_the_callers_language(client, street):
    response = client.get("/api/v1/locations/nearby?lat=52", headers={"Accept-Language": "nl"})
    body = problem(response, 400, "invalid_parameter")
    assert body["detail"].startswith("lon:") and response.headers["Content-Language"] == "nl"
    assert db.session.query(Location).count() == 6
