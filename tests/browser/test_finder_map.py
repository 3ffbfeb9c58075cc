"""The charger finder's map page in a real browser: a driver searches a place by name, filters DC ≥ 50 kW, opens
a location (from its marker, by keyboard), checks its price, its navigation links and the invitation to sign in to
start charging; on a desktop and on a phone (390×844, no sideways scrolling), in English, Dutch and French; with
tiles that cannot load (the list still works) and without JavaScript at all. Also: the list sorted by the driver's
price (kept in the address), and a search along a route between two typed places (the straight line, drawn), by
keyboard on a phone.

Tiles come from a tile host the browser never reaches: Playwright answers its requests with a blank tile (or
refuses them), so nothing leaves this machine."""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import format_currency
from flask import Flask

from app.db import utcnow
from app.extensions import db
from app.money import quantize
from app.plans import services as plan_services
from app.rating.estimates import estimate_for_connector
from app.roaming.receive.locations import get_location
from tests.browser.conftest import LiveServer, make_live_app, running
from tests.finder.builders import CCS_150KW, TYPE2_11KW, TYPE2_22KW, add_location, connector, energy_tariff, evse

AMERSFOORT = (52.155, 5.3875)  # where the offline gazetteer puts "Amersfoort"

pytestmark = pytest.mark.browser

UTRECHT = (52.09083, 5.12222)
TILE_HOST = "http://tiles.finder.test"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def blank_tile() -> bytes:
    """A 256×256 PNG in the map's background colour."""
    rows = b"".join(b"\x00" + bytes((230, 235, 233)) * 256 for _ in range(256))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


TILE = blank_tile()


@pytest.fixture
def map_server(app: Flask, tmp_path: Path) -> Iterator[tuple[LiveServer, Decimal]]:
    """A live server with four chargers in Utrecht (11 kW and 22 kW Type 2, 150 kW CCS, and a cheaper 11 kW Type 2
    a bit farther), two on the way to Amersfoort (11 kW Type 2, 150 kW CCS); answers the Utrecht CCS's
    Pay-as-you-go price of a typical session (what the page must show a visitor). The CCS can be started
    remotely."""
    live_app = make_live_app(app, tmp_path, FINDER_TILE_URL=TILE_HOST + "/{z}/{x}/{y}.png")
    with live_app.app_context():
        energy_tariff("AC", "0.39")
        energy_tariff("DC", "0.59")
        energy_tariff("CHEAP", "0.25")
        step = 0.0015
        add_location(
            UTRECHT[0] + step,
            UTRECHT[1],
            evse("E1", connector(TYPE2_11KW, tariff_ids=["AC"])),
            id="NEUDE",
            name="Neude",
        )
        add_location(
            UTRECHT[0],
            UTRECHT[1] + 2 * step,
            evse("E1", connector(TYPE2_22KW, tariff_ids=["AC"])),
            id="DOM",
            name="Domplein",
        )
        add_location(
            UTRECHT[0] - 2 * step,
            UTRECHT[1] - 2 * step,
            {**evse("E1", connector(CCS_150KW, tariff_ids=["DC"])), "capabilities": ["REMOTE_START_STOP_CAPABLE"]},
            id="JAARBEURS",
            name="Jaarbeurs Snelladen",
        )
        add_location(
            UTRECHT[0] + 4 * step,
            UTRECHT[1],
            evse("E1", connector(TYPE2_11KW, tariff_ids=["CHEAP"])),
            id="GRIFTPARK",
            name="Griftpark",
        )
        for fraction, name, kind, tariff in (
            (0.5, "Zeist", TYPE2_11KW, "AC"),
            (0.8, "Leusden Snelladen", CCS_150KW, "DC"),
        ):
            add_location(
                UTRECHT[0] + (AMERSFOORT[0] - UTRECHT[0]) * fraction,
                UTRECHT[1] + (AMERSFOORT[1] - UTRECHT[1]) * fraction,
                evse("E1", connector(kind, tariff_ids=[tariff])),
                id=name.split()[0].upper(),
                name=name,
            )
        db.session.commit()
        stored = get_location("NL", "TCP", "JAARBEURS")
        payg = plan_services.current_version("payg")
        typical = {"kwh": Decimal(20), "duration": dt.timedelta(minutes=45)}
        price = estimate_for_connector(stored, "E1", "1", plan=payg, at=utcnow(), **typical)
        assert price.example_driver is not None
        expected = quantize(price.example_driver.incl_vat, 2)
        db.session.rollback()  # no read transaction left open: SQLite would lock the live server's writes out
    with running(live_app, tmp_path / "outbox") as server:
        yield server, expected


def open_page(browser: Any, viewport: dict[str, int], locale: str, *, tiles: str = "serve", javascript: bool = True):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        locale=locale,
        viewport=viewport,
        java_script_enabled=javascript,
        is_mobile=viewport == PHONE,
        has_touch=viewport == PHONE,
    )
    page = context.new_page()
    if tiles == "serve":
        page.route(TILE_HOST + "/**", lambda route: route.fulfill(status=200, content_type="image/png", body=TILE))
    else:
        page.route(TILE_HOST + "/**", lambda route: route.abort("connectionrefused"))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return context, page, errors


def no_sideways_scrolling(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def settled(page: Any) -> None:
    """Wait until the page has no request in flight nor one about to start (the script's aria-busy)."""
    page.locator("#finder[aria-busy=false]").wait_for(state="attached")


def search_and_filter_dc_50(page: Any) -> None:
    settled(page)
    page.locator("#finder-q").fill("Utrecht")
    page.locator("#finder-form button[type=submit]").first.click()
    settled(page)
    results = page.locator("#finder-results")
    assert "Neude" in results.inner_text() and "Jaarbeurs" in results.inner_text()
    page.locator("#finder-filters summary").click()
    page.locator("#finder-current").select_option("DC")
    settled(page)
    page.locator("#finder-power").select_option("50")
    settled(page)
    assert "Neude" not in results.inner_text() and "Domplein" not in results.inner_text()
    assert "Jaarbeurs" in results.inner_text()


def check_details(page: Any, expected_price: str) -> None:
    panel = page.locator("#finder-panel")
    panel.wait_for(state="visible")
    assert page.locator("#finder-panel-title").inner_text() == "Jaarbeurs Snelladen"
    assert page.evaluate("document.activeElement.id") == "finder-panel-title"  # the panel is reached at once
    assert panel.locator("[data-price]").inner_text() == expected_price
    lat, lon = UTRECHT[0] - 0.003, UTRECHT[1] - 0.003
    point = f"{lat:.5f},{lon:.5f}"
    hrefs = panel.locator(".finder-nav a").evaluate_all("links => links.map(link => link.getAttribute('href'))")
    assert hrefs == [
        f"https://www.google.com/maps/dir/?api=1&destination={point}",
        f"https://maps.apple.com/?daddr={point}",
        f"https://waze.com/ul?ll={point}&navigate=yes",
        f"https://www.openstreetmap.org/directions?engine=fossgis_osrm_car&route=;{point}",
        f"geo:{point}",
    ]
    # A visitor is asked to sign in to start charging here (the CPO can start this EVSE remotely).
    sign_in = panel.locator("a[href^='/login?next=']")
    assert sign_in.count() == 1 and "/map/locations/NL/TCP/JAARBEURS" in (sign_in.get_attribute("href") or "")
    assert panel.locator("a[href^='/charging/start']").count() == 0


def test_a_visitor_finds_a_fast_charger_with_its_price_on_a_desktop(map_server, browser):
    server, price = map_server
    context, page, errors = open_page(browser, DESKTOP, "en-GB")
    page.goto(server.url + "/")
    page.get_by_role("link", name="Find a charger").click()
    search_and_filter_dc_50(page)
    assert "Showing charge points near Utrecht, Netherlands." in page.locator("#finder-status").inner_text()

    # The map shows the one matching location as a marker; open it by keyboard.
    marker = page.locator(".finder-marker")
    page.wait_for_function("() => document.querySelectorAll('.finder-marker').length === 1")
    assert marker.locator("[aria-hidden=true]").inner_text() == "150"
    assert marker.get_attribute("role") == "button" and marker.get_attribute("tabindex") == "0"
    assert marker.get_attribute("title") == "Jaarbeurs Snelladen, 150 kW DC, available"
    marker.focus()
    page.keyboard.press("Enter")
    check_details(page, format_currency(price, "EUR", locale="en_GB"))
    assert "Pay as you go" in page.locator("#finder-panel").inner_text()

    # Escape closes the panel and gives the focus back to the marker.
    page.keyboard.press("Escape")
    page.locator("#finder-panel").wait_for(state="hidden")
    assert page.evaluate("document.activeElement.classList.contains('finder-marker')")
    # The view is in the address: a reload shows the same place and filters.
    assert "power_type=DC" in page.url and "min_power_kw=50" in page.url
    assert not page.locator(".finder--no-tiles").count() and page.locator("#finder-notice").is_hidden()
    page.screenshot(path="/tmp/finder_desktop_en.png")
    assert errors == []
    context.close()


def test_on_a_phone_in_dutch_the_list_opens_the_details_without_sideways_scrolling(map_server, browser):
    server, price = map_server
    context, page, errors = open_page(browser, PHONE, "nl-NL")
    page.goto(server.url + "/map")
    assert page.evaluate("document.documentElement.lang") == "nl"
    no_sideways_scrolling(page)
    search_and_filter_dc_50(page)
    no_sideways_scrolling(page)
    # The list sits under the map on a phone.
    map_box = page.locator("#finder-map").bounding_box()
    list_box = page.locator(".finder__list").bounding_box()
    assert map_box is not None and list_box is not None and list_box["y"] >= map_box["y"] + map_box["height"]
    page.locator("#finder-results .finder-result a", has_text="Jaarbeurs").click()
    check_details(page, format_currency(price, "EUR", locale="nl_NL"))
    panel_box = page.locator("#finder-panel").bounding_box()
    assert panel_box is not None and panel_box["width"] <= PHONE["width"]
    no_sideways_scrolling(page)
    page.screenshot(path="/tmp/finder_phone_nl.png")
    page.locator("#finder-close").click()
    page.locator("#finder-panel").wait_for(state="hidden")
    assert errors == []
    context.close()


def test_in_french_without_tiles_the_page_works_as_a_list(map_server, browser):
    server, price = map_server
    context, page, errors = open_page(browser, PHONE, "fr-BE", tiles="refuse")
    page.goto(server.url + "/map")
    search_and_filter_dc_50(page)
    page.locator(".finder--no-tiles").wait_for(state="attached")
    assert page.locator("#finder-notice").is_visible()  # the driver is told the map cannot show
    page.locator("#finder-results .finder-result a", has_text="Jaarbeurs").click()
    check_details(page, format_currency(price, "EUR", locale="fr_BE"))
    no_sideways_scrolling(page)
    page.screenshot(path="/tmp/finder_phone_fr_no_tiles.png")
    # The only errors are the refused tiles themselves.
    assert all("tiles.finder.test" in error or "ERR_CONNECTION_REFUSED" in error for error in errors)
    context.close()


def test_without_javascript_the_searched_place_lists_its_chargers_and_their_prices(map_server, browser):
    server, price = map_server
    context, page, _errors = open_page(browser, DESKTOP, "fr-BE", javascript=False)
    page.goto(server.url + "/map")
    page.locator("#finder-q").fill("Utrecht")
    page.locator("#finder-filters summary").click()  # <details> opens without a script
    page.locator("#finder-current").select_option("DC")
    page.locator("#finder-power").select_option("50")
    page.locator("#finder-form button[type=submit]").first.click()
    results = page.locator("#finder-results")
    assert "Jaarbeurs" in results.inner_text() and "Neude" not in results.inner_text()
    results.locator("a", has_text="Jaarbeurs").click()
    assert page.locator("[data-price]").inner_text() == format_currency(price, "EUR", locale="fr_BE")
    assert page.locator(".finder-nav a").count() == 5
    context.close()


def result_names(page: Any) -> list[str]:
    names: list[str] = page.locator("#finder-results .finder-result__name").all_inner_texts()
    return names


def test_in_french_the_list_sorts_by_the_drivers_price_and_the_address_keeps_it(map_server, browser):
    server, _price = map_server
    context, page, errors = open_page(browser, DESKTOP, "fr-BE")
    page.goto(server.url + "/map")
    settled(page)
    assert page.locator("#finder-sort-apply").is_hidden()  # the list follows the choice at once
    page.locator("#finder-q").fill("Utrecht")
    page.keyboard.press("Enter")
    settled(page)
    nearest = result_names(page)
    assert nearest[:3] == ["Neude", "Domplein", "Jaarbeurs Snelladen"] and "Griftpark" in nearest
    page.locator("#finder-sort").select_option("price")
    settled(page)
    cheapest = result_names(page)
    assert cheapest[0] == "Griftpark" and cheapest[-1] == "Jaarbeurs Snelladen"
    assert "sort=price" in page.url
    page.reload()
    settled(page)
    assert page.locator("#finder-sort").input_value() == "price" and result_names(page)[0] == "Griftpark"
    page.screenshot(path="/tmp/finder_desktop_fr_sorted.png")
    assert errors == []
    context.close()


def test_on_a_phone_in_dutch_a_route_between_two_typed_places_lists_the_chargers_on_the_way(map_server, browser):
    server, _price = map_server
    context, page, errors = open_page(browser, PHONE, "nl-NL")
    page.goto(server.url + "/map")
    settled(page)
    assert page.locator("#finder-from").is_hidden()  # one way of searching at a time
    # By keyboard: the mode, both places, Enter.
    page.locator("input[name=mode][value=near]").focus()
    page.keyboard.press("ArrowRight")  # radio buttons move with the arrow keys
    assert page.locator("input[name=mode][value=route]").is_checked()
    assert page.locator("#finder-q").is_hidden() and page.locator("#finder-from").is_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "finder-from"
    page.keyboard.type("Utrecht")
    page.keyboard.press("Tab")
    page.keyboard.type("Amersfoort")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    settled(page)
    status = page.locator("#finder-status").inner_text()
    assert "Utrecht, Nederland" in status and "Amersfoort, Nederland" in status
    names = result_names(page)
    assert names.index("Zeist") < names.index("Leusden Snelladen") and "Jaarbeurs Snelladen" in names
    assert page.locator("#finder-order").is_visible() and page.locator("#finder-sort-control").is_hidden()
    assert page.locator("path.finder-route").count() == 1  # the straight line, drawn
    no_sideways_scrolling(page)
    # The filters hold along the route: fast DC chargers only, still in the order of the route.
    page.locator("#finder-filters summary").click()
    page.locator("#finder-current").select_option("DC")
    settled(page)
    assert result_names(page) == ["Jaarbeurs Snelladen", "Leusden Snelladen"]
    assert "mode=route" in page.url and "power_type=DC" in page.url and "from=Utrecht" in page.url
    page.locator("#finder-results .finder-result a", has_text="Leusden").click()
    page.locator("#finder-panel").wait_for(state="visible")
    assert page.locator("#finder-panel-title").inner_text() == "Leusden Snelladen"
    assert page.locator("#finder-panel [data-price]").count() == 1
    no_sideways_scrolling(page)
    page.screenshot(path="/tmp/finder_phone_nl_route.png")
    assert errors == []
    context.close()
