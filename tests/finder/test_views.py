"""The map page's door (/map): the markers of the visible area, the list, the details panel and the place search;
bad parameters answer 400 naming the parameter; visitors are welcome and rate-limited; unpublished locations are
never shown; the page works without JavaScript and sends no inline script."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from app.audit.services import Actor
from app.db import utcnow
from app.extensions import db, limiter
from app.finder.area import MAX_SPAN_LAT, MAX_SPAN_LON
from app.money import quantize
from app.plans import services as plan_services
from app.rating.estimates import estimate_for_connector
from app.roaming.models import PartnerStatus
from app.roaming.receive.locations import get_location
from app.security import tile_source
from tests.factories import login, make_user
from tests.finder.builders import (
    CCS_150KW,
    TYPE2_11KW,
    add_location,
    add_partner,
    connector,
    energy_tariff,
    evse,
)
from tests.finder.geocoder_recordings.server import start_recorded_geocoder

UTRECHT = (52.09083, 5.12222)  # where the offline gazetteer puts "Utrecht"
AROUND_UTRECHT = "5.10,52.08,5.14,52.10"
TYPICAL = {"kwh": Decimal(20), "duration": dt.timedelta(minutes=45)}


def near(steps: int) -> tuple[float, float]:
    return (UTRECHT[0] + 0.001 * steps, UTRECHT[1])


@pytest.fixture
def config(app: Flask) -> Iterator[dict[str, Any]]:
    """The app's configuration, restored after the test."""
    saved = dict(app.config)
    yield app.config
    app.config.clear()
    app.config.update(saved)


@pytest.fixture
def chargers(db_session: object) -> dict[str, Any]:
    """An 11 kW Type 2 and a 150 kW CCS in Utrecht, both priced; an unpublished one; one in Amsterdam."""
    energy_tariff("AC", "0.40")
    energy_tariff("DC", "0.59")
    slow = add_location(*near(1), evse("E1", connector(TYPE2_11KW, tariff_ids=["AC"])), id="SLOW", name="Neude")
    fast = add_location(*near(3), evse("E1", connector(CCS_150KW, tariff_ids=["DC"])), id="FAST", name="Jaarbeurs")
    hidden = add_location(*near(2), evse("E1", connector(CCS_150KW)), id="HIDDEN", name="Secret", publish=False)
    far = add_location(52.3731, 4.8922, id="FAR", name="Dam")
    db.session.commit()
    return {"slow": slow, "fast": fast, "hidden": hidden, "far": far}


def problem(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    return body


# --- markers of the visible area --------------------------------------------------------------------------------


def test_markers_are_the_published_locations_of_the_visible_area(client, chargers):
    answer = client.get(f"/map/markers?bbox={AROUND_UTRECHT}").get_json()
    assert answer["total"] == 2 and answer["clusters"] == []
    by_id = {marker["id"]: marker for marker in answer["markers"]}
    assert set(by_id) == {"NL/TCP/SLOW", "NL/TCP/FAST"}  # not the unpublished one, not Amsterdam
    fast = by_id["NL/TCP/FAST"]
    assert fast["dc"] is True and fast["kw"] == "150" and fast["available"] is True
    assert fast["label"] == "Jaarbeurs, 150 kW DC, available"
    assert fast["url"] == "/map/locations/NL/TCP/FAST" and fast["panel"] == "/map/locations/NL/TCP/FAST/panel"
    assert abs(fast["lat"] - near(3)[0]) < 1e-6

    amsterdam = client.get("/map/markers?bbox=4.85,52.35,4.95,52.40").get_json()
    assert [marker["id"] for marker in amsterdam["markers"]] == ["NL/TCP/FAR"]


def test_markers_apply_the_filters_on_the_same_connector(client, chargers):
    answer = client.get(f"/map/markers?bbox={AROUND_UTRECHT}&power_type=DC&min_power_kw=50").get_json()
    assert [marker["id"] for marker in answer["markers"]] == ["NL/TCP/FAST"]
    # The links keep the filters: the details price the connector that matched.
    assert answer["markers"][0]["panel"] == "/map/locations/NL/TCP/FAST/panel?min_power_kw=50&power_type=DC"
    typed = client.get(f"/map/markers?bbox={AROUND_UTRECHT}&connector=type2&connector=chademo").get_json()
    assert [marker["id"] for marker in typed["markers"]] == ["NL/TCP/SLOW"]


def test_a_removed_location_disappears_from_the_map(client, chargers):
    location = get_location("NL", "TCP", "SLOW")
    assert location is not None
    for removed in location.evses:
        removed.status = "REMOVED"
    db.session.commit()
    answer = client.get(f"/map/markers?bbox={AROUND_UTRECHT}").get_json()
    assert [marker["id"] for marker in answer["markers"]] == ["NL/TCP/FAST"]


def test_more_locations_than_the_limit_become_counts_on_a_grid(client, chargers, config):
    config["FINDER_MAP_MAX_MARKERS"] = 1
    answer = client.get(f"/map/markers?bbox={AROUND_UTRECHT}").get_json()
    assert answer["markers"] == [] and answer["total"] == 2
    assert sum(cell["count"] for cell in answer["clusters"]) == 2
    for cell in answer["clusters"]:
        south, west, north, east = cell["bounds"]
        assert south <= cell["lat"] <= north and west <= cell["lon"] <= east


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("", "bbox"),
        ("bbox=", "bbox"),
        ("bbox=5.1,52.0,5.2", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=5.1,52.0,5.2,nan", "bbox"),
        ("bbox=5.2,52.0,5.1,52.1", "bbox"),  # west east of east
        ("bbox=5.1,52.1,5.2,52.0", "bbox"),  # south north of north
        ("bbox=5.1,52.0,5.2,91", "bbox"),
        ("bbox=-181,52.0,5.2,52.1", "bbox"),
        (f"bbox=0,50,{MAX_SPAN_LON + 0.5},51", "bbox"),  # a whole continent: zoom in
        (f"bbox=5,40,6,{40 + MAX_SPAN_LAT + 0.5}", "bbox"),
        ("bbox=" + "1" * 200, "bbox"),
        (f"bbox={AROUND_UTRECHT}&min_power_kw=lots", "min_power_kw"),
        (f"bbox={AROUND_UTRECHT}&min_power_kw=5000", "min_power_kw"),
        (f"bbox={AROUND_UTRECHT}&power_type=XYZ", "power_type"),
        (f"bbox={AROUND_UTRECHT}&connector=steam", "connector"),
        (f"bbox={AROUND_UTRECHT}&available=perhaps", "available"),
        (f"bbox={AROUND_UTRECHT}&operator=" + "x" * 101, "operator"),
    ],
)
def test_bad_marker_parameters_answer_400_naming_the_parameter(client, chargers, query, parameter):
    response = client.get(f"/map/markers?{query}")
    assert response.status_code == 400
    body = problem(response)
    assert body["parameter"] == parameter and body["detail"].startswith(parameter + ":")


def test_the_largest_allowed_area_is_answered(client, chargers):
    west, south = 3.0, 50.5
    answer = client.get(f"/map/markers?bbox={west},{south},{west + MAX_SPAN_LON},{south + MAX_SPAN_LAT}")
    assert answer.status_code == 200 and answer.get_json()["total"] == 3


# --- the list ---------------------------------------------------------------------------------------------------


def test_the_list_prices_a_visitors_session_as_pay_as_you_go(client, chargers):
    at = utcnow()
    payg = plan_services.current_version("payg")
    stored = get_location("NL", "TCP", "FAST")
    expected = estimate_for_connector(stored, "E1", "1", plan=payg, at=at, **TYPICAL).example_driver.incl_vat
    html = client.get(f"/map/results?lat={UTRECHT[0]}&lon={UTRECHT[1]}&radius_km=2&power_type=DC").get_data(
        as_text=True
    )
    assert "Jaarbeurs" in html and "Neude" not in html and "Secret" not in html
    assert f"€{quantize(expected, 2)} for a typical session" in html
    assert "Pay as you go" in html


def test_a_driver_sees_the_price_of_their_own_plan(client, chargers):
    user = make_user()
    for stretch in plan_services.history(user.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    plan_services.change_plan(user.account, plan_services.current_version("comfort"), Actor.system("test"))
    db.session.commit()
    stored = get_location("NL", "TCP", "FAST")
    theirs = estimate_for_connector(stored, "E1", "1", account=user.account, at=utcnow(), **TYPICAL)
    login(client, user)
    html = client.get(f"/map/results?lat={UTRECHT[0]}&lon={UTRECHT[1]}&power_type=DC").get_data(as_text=True)
    assert f"€{quantize(theirs.example_driver.incl_vat, 2)} for a typical session" in html
    assert "Comfort" in html


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("lon=5.1", "lat"),
        ("lat=52&lon=east", "lon"),
        ("lat=52&lon=5&radius_km=500", "radius_km"),
        ("lat=52&lon=5&cursor=not-a-cursor", "cursor"),
        ("lat=52&lon=5&open_now=maybe", "open_now"),
    ],
)
def test_bad_list_parameters_answer_400_naming_the_parameter(client, chargers, query, parameter):
    response = client.get(f"/map/results?{query}")
    assert response.status_code == 400 and problem(response)["parameter"] == parameter


def test_the_list_pages_on_with_its_cursor(client, db_session):
    for step in range(25):
        add_location(*near(step), name=f"Spot {step:02d}")
    db.session.commit()
    first = client.get(f"/map/results?lat={UTRECHT[0]}&lon={UTRECHT[1]}").get_data(as_text=True)
    names = re.findall(r"Spot \d\d", first)
    more = re.search(r'data-more="([^"]+)"', first)
    assert len(names) == 20 and more is not None
    second = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert sorted(names + re.findall(r"Spot \d\d", second)) == [f"Spot {step:02d}" for step in range(25)]
    assert "data-more" not in second


# --- one location -----------------------------------------------------------------------------------------------


def test_the_details_panel_has_the_price_and_the_navigation_links(client, chargers):
    lat, lon = near(3)
    html = client.get(f"/map/locations/NL/TCP/FAST/panel?lat={UTRECHT[0]}&lon={UTRECHT[1]}").get_data(as_text=True)
    assert 'id="finder-panel-title"' in html and "Jaarbeurs" in html
    assert "Your price" in html and "Pay as you go" in html and "€0.59/kWh" in html
    point = ",".join(format(Decimal(f"{value:.6f}").normalize(), "f") for value in (lat, lon))
    for link in (
        f"https://www.google.com/maps/dir/?api=1&amp;destination={point}",
        f"https://maps.apple.com/?daddr={point}",
        f"https://waze.com/ul?ll={point}&amp;navigate=yes",
        f"https://www.openstreetmap.org/directions?engine=fossgis_osrm_car&amp;route=;{point}",
        f'href="geo:{point}"',
    ):
        assert link in html
    assert "330 m away" in html  # from the searched point, 0.003° north


def test_a_location_has_its_own_page_without_javascript(client, chargers):
    page = client.get("/map/locations/nl/tcp/fast")  # OCPI ids compare case-insensitively
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Jaarbeurs" in html and "Back to the map" in html and "Google Maps" in html


@pytest.mark.parametrize(
    "path",
    [
        "/map/locations/NL/TCP/HIDDEN",  # unpublished
        "/map/locations/NL/TCP/HIDDEN/panel",
        "/map/locations/NL/TCP/NOWHERE/panel",
        "/map/locations/NLD/TCP/FAST/panel",
        "/map/locations/NL/TCP/" + "X" * 37,
    ],
)
def test_unpublished_and_unknown_locations_are_not_found(client, chargers, path):
    response = client.get(path)
    assert response.status_code == 404
    if path.endswith("/panel"):
        assert problem(response)["status"] == 404


def test_a_removed_partners_locations_are_not_shown(client, db_session):
    partner = add_partner("Gone CPO", "GON", status=PartnerStatus.REMOVED)
    add_location(*near(1), partner=partner, party_id="GON", id="GONE", name="Gone")
    db.session.commit()
    assert client.get(f"/map/markers?bbox={AROUND_UTRECHT}").get_json()["markers"] == []
    assert client.get("/map/locations/NL/GON/GONE/panel").status_code == 404


# --- the place search --------------------------------------------------------------------------------------------


def test_a_place_is_found_by_name_in_any_language(client, db_session):
    answer = client.get("/map/place?q=Gand", headers={"Accept-Language": "fr"}).get_json()
    assert answer["label"] == "Gand, Belgique" and round(answer["lat"], 2) == 51.05


def test_an_unknown_or_bad_place_gets_a_clear_answer(client, db_session):
    unknown = client.get("/map/place?q=Xyzzyville")
    assert unknown.status_code == 404 and "could not find “Xyzzyville”" in problem(unknown)["detail"]
    for bad in ("", "x" * 201, "Gent\x00"):
        response = client.get("/map/place", query_string={"q": bad})
        assert response.status_code == 400 and problem(response)["parameter"] == "q"


def test_a_geocoder_that_is_down_says_try_again(client, db_session, config):
    running = start_recorded_geocoder()
    try:
        config.update(
            GEOCODER="nominatim", GEOCODER_DOMAIN=running.geocoder.domain, GEOCODER_SCHEME="http", GEOCODER_TIMEOUT=1.0
        )
        running.geocoder.misbehave["status"] = 503
        response = client.get("/map/place?q=Gent")
        assert response.status_code == 503 and "try again" in problem(response)["detail"]
        page = client.get("/map?q=Gent")
        assert page.status_code == 503 and "Please try again in a moment." in page.get_data(as_text=True)
    finally:
        running.stop()


# --- the page -----------------------------------------------------------------------------------------------------


def test_without_javascript_a_searched_place_lists_its_chargers(client, chargers):
    page = client.get("/map?q=Utrecht&power_type=DC&min_power_kw=50")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Showing charge points near Utrecht, Netherlands." in html
    assert "Jaarbeurs" in html and "Neude" not in html and "Secret" not in html
    assert '<option value="DC" selected>' in html and '<option value="50" selected>' in html
    details = re.search(r'href="(/map/locations/NL/TCP/FAST\?[^"]+)"', html)
    assert details is not None and "lat=52.09083" in details.group(1)


def test_an_unknown_place_says_so_on_the_page(client, db_session):
    html = client.get("/map?q=Xyzzyville").get_data(as_text=True)
    assert "We could not find “Xyzzyville”" in html


def test_a_bad_filter_on_the_page_says_so(client, db_session):
    page = client.get("/map?q=Utrecht&min_power_kw=lots")
    assert page.status_code == 400 and "This filter is not valid: min_power_kw." in page.get_data(as_text=True)


def test_works_with_my_card_is_offered_to_drivers(client, chargers):
    assert 'name="my_cards"' not in client.get("/map").get_data(as_text=True)
    login(client, make_user())
    assert 'name="my_cards"' in client.get("/map").get_data(as_text=True)
    # No partner of ours reaches the test operator: none of its locations works with our cards.
    mine = client.get(f"/map/markers?bbox={AROUND_UTRECHT}&my_cards=true").get_json()
    assert mine["markers"] == []
    add_partner("Test hub", "HUB", is_hub=True, relays=(("TCP", "CONNECTED"),))
    db.session.commit()
    mine = client.get(f"/map/markers?bbox={AROUND_UTRECHT}&my_cards=true").get_json()
    assert {marker["id"] for marker in mine["markers"]} == {"NL/TCP/SLOW", "NL/TCP/FAST"}


def test_the_page_sends_no_inline_script_and_passes_its_settings_as_json(client, db_session):
    html = client.get("/map", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    inline = [attributes for attributes, body in scripts if body.strip() and "application/json" not in attributes]
    assert inline == []
    assert all("src=" in attributes or "application/json" in attributes for attributes, _ in scripts)
    for vendored in ("vendor/leaflet/leaflet.js", "vendor/leaflet.markercluster/leaflet.markercluster.js"):
        assert vendored in html
    assert "GeoNames" in html and '<html lang="nl">' in html


def test_the_landing_page_and_the_drivers_navigation_link_to_the_map(client, db_session):
    assert 'href="/map"' in client.get("/").get_data(as_text=True)
    login(client, make_user())
    assert 'href="/map"' in client.get("/dashboard").get_data(as_text=True)


# --- security -----------------------------------------------------------------------------------------------------


def test_the_tile_server_is_allowed_in_img_src_from_configuration(client, db_session, config):
    img_src = next(
        part for part in client.get("/map").headers["Content-Security-Policy"].split("; ") if part.startswith("img-src")
    )
    assert img_src == "img-src 'self' data: https://*.tile.openstreetmap.org"
    config["FINDER_TILE_URL"] = "https://tiles.example.net:8443/osm/{z}/{x}/{y}.png"
    img_src = next(
        part for part in client.get("/map").headers["Content-Security-Policy"].split("; ") if part.startswith("img-src")
    )
    assert img_src == "img-src 'self' data: https://tiles.example.net:8443"
    assert "*" not in img_src


def test_a_tile_host_csp_cannot_express_is_refused_rather_than_widened():
    assert tile_source("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png") == "https://*.tile.openstreetmap.org"
    assert tile_source("https://tile-{s}.example.org/{z}/{x}/{y}.png") is None
    assert tile_source("javascript:alert(1)") is None


def test_visitors_are_rate_limited_and_told_in_json(client, chargers, config):
    config["FINDER_MAP_RATE_LIMIT"] = "3 per minute"
    with client.application.app_context():
        limiter.reset()
    statuses = [client.get(f"/map/markers?bbox={AROUND_UTRECHT}").status_code for _ in range(3)]
    limited = client.get(f"/map/results?lat={UTRECHT[0]}&lon={UTRECHT[1]}")  # one budget for the whole map
    assert statuses == [200, 200, 200] and limited.status_code == 429
    assert problem(limited)["status"] == 429
    assert client.get("/map").status_code == 429
    # A logged-in driver is not limited by the visitors' budget.
    login(client, make_user())
    assert client.get(f"/map/markers?bbox={AROUND_UTRECHT}").status_code == 200
