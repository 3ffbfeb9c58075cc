"""The map page's searches beyond "near a place" (/map, /map/results): sorted by the driver's price, along a route
(a shared polyline, or the straight line between two typed places), kept in the address and in the links of later
pages; and "Start charging" in the details for EVSEs the CPO can start remotely (visitors are asked to sign in)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

from app.accounts.models import Role
from app.extensions import db
from app.finder.route import encode_polyline
from app.finder.route_request import MAX_DRAWN_POINTS, thinned
from tests.factories import login, make_user
from tests.finder.builders import CCS_150KW, TYPE2_11KW, add_location, connector, energy_tariff, evse

UTRECHT = (52.09083, 5.12222)  # where the offline gazetteer puts "Utrecht"
AMERSFOORT = (52.155, 5.3875)  # and "Amersfoort"


def near(steps: int) -> tuple[float, float]:
    return (UTRECHT[0] + 0.001 * steps, UTRECHT[1])


def between(fraction: float) -> tuple[float, float]:
    """A point on the line from Utrecht to Amersfoort (19 km: the straight line and the great circle differ by
    centimetres)."""
    return (
        UTRECHT[0] + (AMERSFOORT[0] - UTRECHT[0]) * fraction,
        UTRECHT[1] + (AMERSFOORT[1] - UTRECHT[1]) * fraction,
    )


def names_in(html: str, prefix: str) -> list[str]:
    return re.findall(rf'class="finder-result__name">({prefix}[^<]*)<', html)


def settings_of(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="finder-settings">(.*?)</script>', html, re.S)
    assert found is not None
    settings: dict[str, Any] = json.loads(found.group(1))
    return settings


def unescaped(link: str) -> str:
    return link.replace("&amp;", "&")


# --- sort by the driver's price ------------------------------------------------------------------------------------


@pytest.fixture
def priced(db_session: object) -> None:
    """Three chargers north of Utrecht's centre: the nearer, the dearer."""
    for tariff_id, price in (("DEAR", "0.69"), ("MID", "0.45"), ("CHEAP", "0.25")):
        energy_tariff(tariff_id, price)
    for steps, tariff_id, name in ((1, "DEAR", "Dear"), (3, "MID", "Middle"), (5, "CHEAP", "Cheap")):
        add_location(*near(steps), evse("E1", connector(TYPE2_11KW, tariff_ids=[tariff_id])), id=name, name=name)
    db.session.commit()


def test_without_javascript_the_list_sorts_by_the_drivers_price(client, priced):
    by_distance = client.get("/map?q=Utrecht").get_data(as_text=True)
    assert [name for name in names_in(by_distance, "") if name in ("Dear", "Middle", "Cheap")] == [
        "Dear",
        "Middle",
        "Cheap",
    ]
    page = client.get("/map?q=Utrecht&sort=price")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert names_in(html, "") == ["Cheap", "Middle", "Dear"]
    # The sort control belongs to the search form (outside it in the page, by its form attribute) and says so.
    assert '<select id="finder-sort" name="sort" form="finder-form">' in html
    assert '<option value="price" selected>Cheapest for you first</option>' in html


def test_the_list_fragment_sorts_by_price_and_a_bad_order_is_named(client, priced):
    html = client.get(f"/map/results?lat={UTRECHT[0]}&lon={UTRECHT[1]}&sort=price").get_data(as_text=True)
    assert names_in(html, "") == ["Cheap", "Middle", "Dear"]
    response = client.get(f"/map/results?lat={UTRECHT[0]}&lon={UTRECHT[1]}&sort=colour")
    assert response.status_code == 400 and response.get_json()["parameter"] == "sort"
    page = client.get("/map?q=Utrecht&sort=colour")
    assert page.status_code == 400 and "This search is not valid: sort." in page.get_data(as_text=True)


def test_later_pages_keep_the_price_order(client, db_session):
    # 25 chargers, each farther one cheaper: the order by price is the reverse of the order by distance.
    for step in range(25):
        energy_tariff(f"T{step:02d}", str(Decimal("0.70") - Decimal("0.01") * step))
        add_location(
            *near(step),
            evse("E1", connector(TYPE2_11KW, tariff_ids=[f"T{step:02d}"])),
            id=f"SPOT{step:02d}",
            name=f"Spot {step:02d}",
        )
    db.session.commit()
    first = client.get(f"/map/results?lat={UTRECHT[0]}&lon={UTRECHT[1]}&sort=price").get_data(as_text=True)
    more = re.search(r'data-more="([^"]+)"', first)
    page_link = re.search(r'href="(/map\?[^"]+)" data-more', first)
    assert more is not None and page_link is not None
    assert "sort=price" in more.group(1) and "sort=price" in page_link.group(1)
    second = client.get(unescaped(more.group(1))).get_data(as_text=True)
    expected = [f"Spot {step:02d}" for step in reversed(range(25))]
    assert names_in(first, "Spot") + names_in(second, "Spot") == expected
    # Without JavaScript the "More results" link is the whole page, in the same order.
    whole = client.get(unescaped(page_link.group(1))).get_data(as_text=True)
    assert names_in(whole, "Spot") == expected[20:]


# --- along a route -------------------------------------------------------------------------------------------------


@pytest.fixture
def on_the_way(db_session: object) -> None:
    """Chargers on the line from Utrecht to Amersfoort (stored out of order), and one 5 km off it."""
    energy_tariff("AC", "0.40")
    energy_tariff("DC", "0.59")
    for fraction, name, kind, tariff in (
        (0.8, "Leusden", TYPE2_11KW, "AC"),
        (0.2, "De Bilt", CCS_150KW, "DC"),
        (0.5, "Zeist", TYPE2_11KW, "AC"),
    ):
        lat, lon = between(fraction)
        add_location(lat, lon, evse("E1", connector(kind, tariff_ids=[tariff])), id=name.replace(" ", ""), name=name)
    lat, lon = between(0.5)
    add_location(lat + 0.045, lon, id="OFF", name="Far off")
    db.session.commit()


ON_THE_WAY = ["De Bilt", "Zeist", "Leusden"]


def test_without_javascript_two_typed_places_search_along_the_straight_line_between_them(client, on_the_way):
    page = client.get("/map?mode=route&from=Utrecht&to=Amersfoort&corridor_km=2")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert (
        "Along the route: straight line between Utrecht, Netherlands and Amersfoort, Netherlands, up to 2 km from it."
        in html
    )
    assert names_in(html, "") == ON_THE_WAY  # in the order of the route; not the one 5 km off it
    assert "In the order of the route" in html and "along the route" in html and "off the route" in html
    assert '<input type="radio" name="mode" value="route" checked>' in html
    assert 'value="Utrecht"' in html and 'value="Amersfoort"' in html
    assert '<option value="2" selected>' in html
    # The route drawn on the map: the two places, and no polyline field (the typed places say it again).
    route = settings_of(html)["route"]
    assert route["points"] == [list(UTRECHT), list(AMERSFOORT)] and route["straight"] is True
    assert 'name="polyline"' not in html
    # A wider corridor reaches the one off the line; the filters hold along the route as near a place.
    wide = client.get("/map?mode=route&from=Utrecht&to=Amersfoort&corridor_km=10").get_data(as_text=True)
    assert "Far off" in names_in(wide, "") and '<option value="10" selected>' in wide
    dc = client.get("/map?mode=route&from=Utrecht&to=Amersfoort&power_type=DC&min_power_kw=50").get_data(as_text=True)
    assert names_in(dc, "") == ["De Bilt"]


def test_a_shared_polyline_is_searched_as_it_is_in_its_own_direction(client, on_the_way):
    backwards = encode_polyline([AMERSFOORT, between(0.5), UTRECHT])
    page = client.get("/map", query_string={"polyline": backwards})  # a link from the app: no mode needed
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Along the route: the route you shared, up to 2 km from it." in html
    assert names_in(html, "") == list(reversed(ON_THE_WAY))
    # The form keeps the route, so a change of filters or corridor searches the same road.
    assert f'<input type="hidden" name="polyline" value="{backwards}">' in html
    assert settings_of(html)["route"]["straight"] is False
    # Typed places win over a route passed earlier.
    typed = client.get(
        "/map", query_string={"mode": "route", "polyline": backwards, "from": "Utrecht", "to": "Amersfoort"}
    )
    assert names_in(typed.get_data(as_text=True), "") == ON_THE_WAY


def test_the_list_fragment_follows_a_route(client, on_the_way):
    polyline = encode_polyline([UTRECHT, AMERSFOORT])
    html = client.get("/map/results", query_string={"polyline": polyline, "corridor_km": "2"}).get_data(as_text=True)
    assert names_in(html, "") == ON_THE_WAY
    # The details keep the filters, not a distance from a point: there is none along a route.
    link = re.search(r'href="(/map/locations/NL/TCP/DeBilt[^"]*)"', html)
    assert link is not None and "lat=" not in link.group(1)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"polyline": "not a polyline"}, "polyline"),
        ({"polyline": encode_polyline([UTRECHT, AMERSFOORT]), "corridor_km": "100"}, "corridor_km"),
        ({"polyline": encode_polyline([UTRECHT, AMERSFOORT]), "corridor_km": "wide"}, "corridor_km"),
        ({"polyline": encode_polyline([UTRECHT, AMERSFOORT]), "cursor": "nope"}, "cursor"),
        ({"polyline": encode_polyline([UTRECHT])}, "polyline"),
    ],
)
def test_bad_route_parameters_of_the_list_answer_400_naming_the_parameter(client, on_the_way, query, parameter):
    response = client.get("/map/results", query_string=query)
    assert response.status_code == 400 and response.get_json()["parameter"] == parameter


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"mode": "route", "from": "Utrecht"}, 400, "Type both a start and a destination."),
        ({"mode": "route", "to": "Utrecht"}, 400, "Type both a start and a destination."),
        ({"mode": "route", "from": "Utrecht", "to": "Xyzzyville"}, 200, "We could not find “Xyzzyville”"),
        ({"mode": "route", "from": "x" * 201, "to": "Utrecht"}, 400, "at most 200 characters"),
        ({"mode": "route", "polyline": "not a polyline"}, 400, "This search is not valid: polyline."),
        (
            {"mode": "route", "polyline": encode_polyline([UTRECHT, AMERSFOORT]), "corridor_km": "99"},
            400,
            "This search is not valid: corridor_km.",
        ),
        ({"mode": "sideways"}, 400, "This search is not valid: mode."),
    ],
)
def test_a_route_that_cannot_be_searched_says_why_on_the_page(client, on_the_way, query, status, message):
    page = client.get("/map", query_string=query)
    html = page.get_data(as_text=True)
    assert page.status_code == status and message in html
    assert 'class="finder-results"' not in html


def test_the_route_form_waits_for_both_places(client, db_session):
    html = client.get("/map?mode=route").get_data(as_text=True)
    assert "Type a start and a destination to see the charge points along the way." in html
    assert settings_of(html)["route"] is None


def test_a_long_route_pages_on_in_its_order(client, db_session):
    for index in range(25):
        lat, lon = between(index / 25)
        add_location(lat, lon, id=f"R{index:02d}", name=f"Stop {index:02d}")
    db.session.commit()
    first = client.get("/map?mode=route&from=Utrecht&to=Amersfoort&corridor_km=1").get_data(as_text=True)
    expected = [f"Stop {index:02d}" for index in range(25)]
    assert names_in(first, "Stop") == expected[:20]
    page_link = re.search(r'href="(/map\?[^"]+)" data-more="([^"]+)"', first)
    assert page_link is not None
    whole, fragment = (unescaped(link) for link in page_link.groups())
    assert "from=Utrecht" in whole and "mode=route" in whole and "corridor_km=1" in whole
    assert names_in(client.get(whole).get_data(as_text=True), "Stop") == expected[20:]
    assert names_in(client.get(fragment).get_data(as_text=True), "Stop") == expected[20:]


def test_a_long_shared_route_is_drawn_with_a_bounded_number_of_points():
    points = [(52.0 + index * 1e-4, 5.0) for index in range(5000)]
    drawn = thinned(points)
    assert len(drawn) == MAX_DRAWN_POINTS and drawn[0] == points[0] and drawn[-1] == points[-1]
    assert thinned(points[:10]) == tuple(points[:10])


# --- "Start charging" ------------------------------------------------------------------------------------------------


@pytest.fixture
def remote_capable(db_session: object) -> None:
    """A location whose first EVSE can be started remotely and is free, whose second cannot be started remotely,
    and whose third can be but is in use."""
    energy_tariff("AC", "0.40")
    capable = ["RESERVABLE", "remote_start_stop_capable"]  # a CiString: compared case-insensitively
    add_location(
        *near(1),
        {**evse("E1", connector(TYPE2_11KW, tariff_ids=["AC"])), "capabilities": capable},
        evse("E2", connector(TYPE2_11KW, tariff_ids=["AC"])),
        {**evse("E3", connector(TYPE2_11KW, tariff_ids=["AC"]), status="CHARGING"), "capabilities": capable},
        id="REMOTE",
        name="Remote",
    )
    add_location(*near(2), id="LOCAL", name="Local only")
    db.session.commit()


def test_a_driver_can_start_charging_from_the_details_where_the_cpo_allows_it(client, remote_capable):
    login(client, make_user())
    html = client.get("/map/locations/NL/TCP/REMOTE/panel").get_data(as_text=True)
    starts = re.findall(r'href="(/charging/start\?[^"]+)"', html)
    assert [unescaped(link) for link in starts] == ["/charging/start?location=NL/TCP/REMOTE&evse=E1"]
    assert "Charging can be started here once this charge point is available." in html  # E3, in use
    assert "Sign in to start charging" not in html
    # The link opens the portal's start page for that charge point.
    start = client.get(unescaped(starts[0]))
    assert start.status_code == 200 and "Remote" in start.get_data(as_text=True)
    # The location's own page offers the same; a location without remote start offers nothing.
    assert "/charging/start?location=NL/TCP/REMOTE&amp;evse=E1" in client.get("/map/locations/NL/TCP/REMOTE").get_data(
        as_text=True
    )
    local = client.get("/map/locations/NL/TCP/LOCAL/panel").get_data(as_text=True)
    assert "/charging/start" not in local and "Start charging" not in local


def test_visitors_are_asked_to_sign_in_to_start_charging(client, remote_capable):
    html = client.get("/map/locations/NL/TCP/REMOTE/panel?min_power_kw=11").get_data(as_text=True)
    assert "/charging/start" not in html
    sign_in = re.search(r'<a class="button button--small" href="([^"]+)">Sign in to start charging</a>', html)
    assert sign_in is not None
    assert unescaped(sign_in.group(1)) == "/login?next=/map/locations/NL/TCP/REMOTE?min_power_kw%3D11"
    assert "Sign in to start charging" not in client.get("/map/locations/NL/TCP/LOCAL/panel").get_data(as_text=True)


def test_staff_are_offered_no_charging_of_their_own(client, remote_capable):
    login(client, make_user(Role.SUPPORT))
    html = client.get("/map/locations/NL/TCP/REMOTE/panel").get_data(as_text=True)
    assert "/charging/start" not in html and "Sign in to start charging" not in html
