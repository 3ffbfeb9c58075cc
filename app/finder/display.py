"""How the map page writes what the finder found: the templates' filters (a price as the invoice rounds it, kW,
distances, weekdays), the script's settings, "Start charging" in the details, and the markers of the visible area
as JSON. The page's routes are in :mod:`app.finder.views`, which registers the filters on its blueprint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote, urlencode

from babel import Locale
from babel.dates import get_day_names
from babel.numbers import format_decimal, parse_pattern
from flask import current_app, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from app.finder.area import AreaMarkers, Marker
from app.finder.geocoding import Place
from app.finder.page import remote_startable_evses
from app.finder.queries import MAX_RADIUS_KM
from app.finder.results import LocationResult
from app.finder.route_request import RouteRequest
from app.i18n import format_money
from app.money import to_minor_units

AVAILABLE = "AVAILABLE"  # OCPI EVSE status: a remote start needs it


def finder_price(amount: Decimal, currency: str) -> str:
    """A price as the invoice will round it: half-up to cents (Babel alone would round half-even)."""
    return format_money(to_minor_units(amount, currency), currency, minor_units=True)


def format_kw(value: Decimal | None) -> str:
    """A power in kW: "11", "3.7", "150" (at most one decimal; the feeds' 11.04 is an 11 kW charger)."""
    if value is None:
        return ""
    return format_decimal(value, format="#,##0.#", locale=str(get_locale()))


def format_km(value: Decimal | None) -> str:
    """A distance: "350 m" under a kilometre, "1.6 km" under 10 km, "24 km" beyond."""
    if value is None:
        return ""
    locale = str(get_locale())
    if value < 1:
        return str(_("%(metres)s m", metres=format_decimal(round(value * 1000, -1), format="#,##0", locale=locale)))
    pattern = "#,##0.#" if value < 10 else "#,##0"
    return str(_("%(km)s km", km=format_decimal(value, format=pattern, locale=locale)))


def weekday_name(iso_weekday: int) -> str:
    """1 (Monday) … 7 (Sunday) → the day's name in the current language."""
    return str(get_day_names("wide", locale=str(get_locale()))[iso_weekday - 1])


def map_settings(
    *, mode: str, place: Place | None, point: tuple[float, float] | None, route: RouteRequest | None, corridor_km: float
) -> dict[str, Any]:
    """What the page's script needs: tiles, the first view (the searched place or point), the route to draw, the
    endpoints and its words (translated here)."""
    config = current_app.config
    view = [float(part) for part in str(config["FINDER_MAP_VIEW"]).split(",")]
    start: dict[str, Any] | None = None
    if place is not None:
        start = {"lat": place.latitude, "lon": place.longitude, "label": place.label}
    elif point is not None:
        start = {"lat": point[0], "lon": point[1], "label": None}
    drawn = None
    if route is not None:
        drawn = {
            "points": [[lat, lon] for lat, lon in route.drawn],
            "polyline": route.polyline,
            "corridorKm": corridor_km,
            "straight": route.straight,
            "label": route.label,
        }
    return {
        "tiles": {"url": config["FINDER_TILE_URL"], "attribution": config["FINDER_TILE_ATTRIBUTION"]},
        "placeAttribution": _("Place names and postcodes: © GeoNames (www.geonames.org), CC BY 4.0"),
        "view": {"lat": view[0], "lon": view[1], "zoom": int(view[2])},
        "start": start,
        "mode": mode,
        "route": drawn,
        "maxSpan": {"lat": 6.0, "lon": 10.0},
        "maxRadiusKm": MAX_RADIUS_KM,
        "urls": {
            "markers": url_for("finder.markers"),
            "results": url_for("finder.results"),
            "place": url_for("finder.place"),
            "page": url_for("finder.map_page"),
        },
        "strings": {
            "map": _("Map of charge points"),
            "zoomIn": _("Zoom in to see the charge points of this area."),
            "cluster": _("{count} locations here: zoom in"),
            "noTiles": _("The map cannot be shown right now. The list below still works."),
            "searching": _("Searching…"),
            "found": _("Showing charge points near {place}."),
            "locating": _("Finding your location…"),
            "noLocation": _("Your location is not available. Search for a place instead."),
            "failed": _("Something went wrong. Please try again."),
            "busy": _("Too many requests. Please wait a minute and try again."),
            "empty": _("No charge point here matches your filters."),
            "yourLocation": _("Your location"),
            "routeStart": _("Start"),
            "routeEnd": _("Destination"),
        },
    }


@dataclass(frozen=True)
class StartOffer:
    """The details' "Start charging": per EVSE the CPO can start remotely (OCPI ``REMOTE_START_STOP_CAPABLE``)."""

    links: Mapping[str, str] = field(default_factory=dict)  # EVSE uid → the portal's start page (a driver; AVAILABLE)
    later: frozenset[str] = frozenset()  # EVSEs that can be started remotely once they are available again
    sign_in_url: str | None = None  # a visitor, at a location where charging can be started remotely


def start_offer(found: LocationResult, page_url: str, *, driver: bool, signed_in: bool) -> StartOffer:
    """What the details offer to start a session (``driver``: a driver is signed in; ``signed_in``: anyone, staff
    too). The start page checks everything else (card, payment method, the partner's commands) with its reasons."""
    if signed_in and not driver:
        return StartOffer()  # staff: no charging of their own
    startable = remote_startable_evses(found.id)
    if not startable:
        return StartOffer()
    if not signed_in:
        return StartOffer(sign_in_url=url_for("accounts.login", next=page_url))
    key = f"{found.country_code}/{found.party_id}/{found.ocpi_id}"
    links = {
        evse.uid: url_for("portal.charging.start_page", location=key, evse=evse.uid)
        for evse in found.evses
        if evse.uid in startable and evse.status.upper() == AVAILABLE
    }
    later = frozenset(evse.uid for evse in found.evses if evse.uid in startable and evse.uid not in links)
    return StartOffer(links, later)


TEMPLATE_FILTERS: dict[str, Callable[..., str]] = {
    "finder_price": finder_price,
    "kw": format_kw,
    "km": format_km,
    "weekday": weekday_name,
}


class _MarkerWriter:
    """Markers as JSON, a thousand at a time: the words, the number format and the link prefix are looked up once
    per request, not once per marker (Babel and ``url_for`` cost more than the search itself)."""

    def __init__(self, filter_args: Mapping[str, str]) -> None:
        locale = Locale.parse(str(get_locale()))
        self._power = _("%(kw)s kW")
        self._available = _("available")
        self._busy = _("none available now")
        # The routes ``finder.location`` and ``finder.panel``, built once with placeholders.
        self._page = url_for("finder.location", country_code="CC", party_id="PTY", location_id="ID")
        self._query = ("?" + urlencode(filter_args)) if filter_args else ""
        self._pattern = parse_pattern("#,##0.#")
        self._locale = locale

    def _kw(self, value: Decimal | None) -> str:
        return "" if value is None else self._pattern.apply(value, self._locale)

    def _url(self, marker: Marker) -> str:
        parts = (quote(marker.country_code, safe=""), quote(marker.party_id, safe=""), quote(marker.ocpi_id, safe=""))
        return self._page.removesuffix("/CC/PTY/ID") + "/" + "/".join(parts)

    def marker(self, marker: Marker) -> dict[str, Any]:
        kw = self._kw(marker.max_power_kw)
        power = (self._power % {"kw": kw}) + (" DC" if marker.dc else " AC") if kw else ("DC" if marker.dc else "AC")
        state = self._available if marker.available else self._busy
        url = self._url(marker)
        return {
            "id": f"{marker.country_code}/{marker.party_id}/{marker.ocpi_id}",
            "lat": marker.lat,
            "lon": marker.lon,
            # The marker's own figure, whole kW (a 32-pixel circle has room for "175", not "174.8").
            "kw": str(int(marker.max_power_kw.to_integral_value(ROUND_HALF_UP))) if marker.max_power_kw else None,
            "dc": marker.dc,
            "available": marker.available,
            "label": f"{marker.name or marker.address}, {power}, {state}",
            "url": url + self._query,
            "panel": url + "/panel" + self._query,
        }


def area_json(area: AreaMarkers, filter_args: Mapping[str, str]) -> dict[str, Any]:
    """The answer of ``GET /map/markers``: the total, the markers, or the grid's counts (``clusters``)."""
    writer = _MarkerWriter(filter_args)
    return {
        "total": area.total,
        "markers": [writer.marker(marker) for marker in area.markers],
        "clusters": [
            {
                "count": cell.count,
                "lat": cell.lat,
                "lon": cell.lon,
                "bounds": [cell.south, cell.west, cell.north, cell.east],
            }
            for cell in area.cells
        ],
    }
