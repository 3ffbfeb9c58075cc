"""The charger finder's portal door: the map page ``/map`` for drivers and visitors.

- ``GET /map``: the page. Without JavaScript it is a search form and, for a searched place (``q``) or a point
  (``lat``, ``lon``), the server-rendered list of the nearest results with their prices (pages by ``cursor``);
  with JavaScript (``static/js/finder.js``) it is also a Leaflet map whose markers, list and details come from
  the endpoints below.
- ``GET /map/markers?bbox=west,south,east,north&<filters>``: JSON, the locations in the visible area
  (:mod:`app.finder.area`: markers, or grid cells when the area holds more than ``FINDER_MAP_MAX_MARKERS``).
- ``GET /map/results?lat=&lon=&radius_km=&<filters>&cursor=``: the list, as an HTML fragment, nearest first.
- ``GET /map/place?q=``: JSON, a typed place geocoded (404 unknown, 503 geocoder down: "try again").
- ``GET /map/locations/<cc>/<party>/<id>`` (page) and ``.../panel`` (fragment): one location with the driver's
  price under their plan (a visitor: Pay-as-you-go), the CPO tariff in words and the navigation links.

The filters have the API's names (``connector``, repeated or comma-separated, ``min_power_kw``, ``power_type``,
``available``, ``operator``, ``open_now``, ``my_cards``), parsed by :func:`app.finder.queries.parse_filters`. Bad
parameters of the data endpoints answer 400 with a JSON problem naming the parameter; the page shows them. Anonymous
use is rate-limited (``FINDER_MAP_RATE_LIMIT``, one budget for the page and its endpoints, per address).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote, urlencode

from babel import Locale
from babel.dates import get_day_names
from babel.numbers import format_decimal, parse_pattern
from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound
from werkzeug.http import HTTP_STATUS_CODES

from app.accounts.models import Account
from app.db import utcnow
from app.errors import render_http_error
from app.extensions import db, limiter
from app.finder.area import AreaMarkers, Marker, known_operators, markers_in_area, parse_bbox
from app.finder.filters import NO_FILTERS, Filters
from app.finder.geocoding import GeocoderUnavailableError, InvalidPlaceQueryError, Place, geocode_place
from app.finder.prices import plan_for
from app.finder.queries import MAX_NUMBER_LENGTH, MAX_RADIUS_KM, FinderInputError, parse_filters, parse_nearby
from app.finder.results import LocationResult, SearchPage
from app.finder.services import location_details, search_nearby
from app.i18n import format_money
from app.money import to_minor_units

bp = Blueprint("finder", __name__, url_prefix="/map")

# The endpoints the page's script calls: their refusals are JSON, whatever went wrong.
DATA_ENDPOINTS = frozenset({"finder.markers", "finder.results", "finder.place", "finder.panel"})
FILTER_PARAMETERS = ("connector", "min_power_kw", "power_type", "available", "operator", "open_now", "my_cards")
RESULTS_PER_PAGE = 20
# The connector standards offered as check boxes (friendly names of app.finder.filters), with their labels.
CONNECTOR_CHOICES = (("type2", "Type 2"), ("ccs", "CCS"), ("chademo", "CHAdeMO"), ("type1", "Type 1"))
MIN_POWER_CHOICES = ("3.7", "11", "22", "50", "100", "150")
MAX_LOCATION_ID_LENGTH = 36  # OCPI CiString(36)


# --- who asks, and how much ---------------------------------------------------------------------------------------


def _driver_account() -> Account | None:
    """The logged-in driver's account (their plan prices the results); None for visitors and staff."""
    if not current_user.is_authenticated or current_user.is_staff:
        return None
    account: Account | None = current_user.account
    return account


def _rate_limit() -> str:
    return str(current_app.config.get("FINDER_MAP_RATE_LIMIT") or "120 per minute;2000 per hour")


def _exempt() -> bool:
    return bool(current_user.is_authenticated)


# One budget for the page and its endpoints (a map view asks for markers and a list at once), visitors only.
limited = limiter.shared_limit(_rate_limit, scope="finder-map", exempt_when=_exempt)


# --- parameters ---------------------------------------------------------------------------------------------------


def _params() -> dict[str, str]:
    """The query string as the finder's parser reads it: one value per name, connectors joined (check boxes send
    one ``connector`` per box)."""
    params = {name: value for name, value in request.args.items() if name != "connector"}
    connectors = [value for value in request.args.getlist("connector") if value.strip()]
    if connectors:
        params["connector"] = ",".join(connectors)
    return params


def _filter_args(params: Mapping[str, str]) -> dict[str, str]:
    return {name: params[name] for name in FILTER_PARAMETERS if params.get(name)}


def _origin(params: Mapping[str, str]) -> tuple[float, float] | None:
    """``lat``/``lon`` of the searched point when both are given and valid (the distance shown in details)."""
    texts = (params.get("lat") or "", params.get("lon") or "")
    if not all(0 < len(text) <= MAX_NUMBER_LENGTH for text in texts):
        return None
    try:
        lat, lon = float(texts[0]), float(texts[1])
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def _problem(status: int, detail: str, parameter: str | None = None) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if parameter is not None:
        body["parameter"] = parameter
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _bad_parameter(error: FinderInputError) -> Response:
    return _problem(400, f"{error.parameter}: {error.message}", error.parameter)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> ResponseReturnValue:
    """The data endpoints answer JSON (a 429 of the rate limiter too); the pages answer as every page does."""
    if request.endpoint in DATA_ENDPOINTS:
        return _problem(error.code or 500, error.description or HTTP_STATUS_CODES.get(error.code or 500, ""))
    return render_http_error(error)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> ResponseReturnValue:
    current_app.logger.exception("finder: unhandled error on %s", request.path)
    db.session.rollback()
    if request.endpoint in DATA_ENDPOINTS:
        return _problem(500, "Something went wrong on our side. Please try again.")
    return render_http_error(InternalServerError())


# --- formatting for the templates --------------------------------------------------------------------------------


@bp.app_template_filter("finder_price")
def finder_price(amount: Decimal, currency: str) -> str:
    """A price as the invoice will round it: half-up to cents (Babel alone would round half-even)."""
    return format_money(to_minor_units(amount, currency), currency, minor_units=True)


@bp.app_template_filter("kw")
def format_kw(value: Decimal | None) -> str:
    """A power in kW: "11", "3.7", "150" (at most one decimal; the feeds' 11.04 is an 11 kW charger)."""
    if value is None:
        return ""
    return format_decimal(value, format="#,##0.#", locale=str(get_locale()))


@bp.app_template_filter("km")
def format_km(value: Decimal | None) -> str:
    """A distance: "350 m" under a kilometre, "1.6 km" under 10 km, "24 km" beyond."""
    if value is None:
        return ""
    locale = str(get_locale())
    if value < 1:
        return str(_("%(metres)s m", metres=format_decimal(round(value * 1000, -1), format="#,##0", locale=locale)))
    pattern = "#,##0.#" if value < 10 else "#,##0"
    return str(_("%(km)s km", km=format_decimal(value, format=pattern, locale=locale)))


@bp.app_template_filter("weekday")
def weekday_name(iso_weekday: int) -> str:
    """1 (Monday) … 7 (Sunday) → the day's name in the current language."""
    return str(get_day_names("wide", locale=str(get_locale()))[iso_weekday - 1])


def _plan_name() -> str:
    plan = plan_for(_driver_account(), utcnow())
    return plan.name_in(str(get_locale())) if plan is not None else ""


def _url(endpoint: str, *values: Mapping[str, Any]) -> str:
    """``url_for`` with the query built from several mappings (later ones win)."""
    merged: dict[str, Any] = {}
    for part in values:
        merged.update(part)
    return url_for(endpoint, **merged)


def _location_urls(item: LocationResult | Marker, extra: Mapping[str, str]) -> tuple[str, str]:
    key = {"country_code": item.country_code, "party_id": item.party_id, "location_id": item.ocpi_id}
    return _url("finder.location", key, extra), _url("finder.panel", key, extra)


# --- the page -----------------------------------------------------------------------------------------------------


def _map_settings(center: Place | tuple[float, float] | None) -> dict[str, Any]:
    """What the script needs: tiles, views, endpoints and its words (translated here)."""
    config = current_app.config
    view = [float(part) for part in str(config["FINDER_MAP_VIEW"]).split(",")]
    if isinstance(center, Place):
        start: dict[str, Any] | None = {"lat": center.latitude, "lon": center.longitude, "label": center.label}
    elif center is not None:
        start = {"lat": center[0], "lon": center[1], "label": None}
    else:
        start = None
    return {
        "tiles": {"url": config["FINDER_TILE_URL"], "attribution": config["FINDER_TILE_ATTRIBUTION"]},
        "placeAttribution": _("Place names and postcodes: © GeoNames (www.geonames.org), CC BY 4.0"),
        "view": {"lat": view[0], "lon": view[1], "zoom": int(view[2])},
        "start": start,
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
        },
    }


@bp.get("")
@limited
def map_page() -> ResponseReturnValue:
    params = _params()
    status = 200
    error: str | None = None
    place: Place | None = None
    page: SearchPage | None = None
    point: tuple[float, float] | None = None
    query = (request.args.get("q") or "").strip()
    try:
        filters = parse_filters(params)
    except FinderInputError as exc:
        filters, status, error = NO_FILTERS, 400, _("This filter is not valid: %(name)s.", name=exc.parameter)
    if query and error is None:
        try:
            place = geocode_place(query, language=str(get_locale()))
            db.session.commit()  # the geocoder's answer is cached
        except InvalidPlaceQueryError:
            status, error = 400, _("Type a place, an address or a postcode (at most 200 characters).")
        except GeocoderUnavailableError:
            status, error = 503, _("Searching places does not work right now. Please try again in a moment.")
        else:
            if place is None:
                error = _("We could not find “%(place)s”. Try a city, a town or a postcode.", place=query[:200])
            else:
                point = (place.latitude, place.longitude)
    elif error is None and (params.get("lat") or params.get("lon")):
        point = _origin(params)
        if point is None:
            status, error = 400, _("This location is not valid.")
    next_url = None
    if point is not None:
        try:
            search = parse_nearby(
                {"limit": str(RESULTS_PER_PAGE), **params, "lat": repr(point[0]), "lon": repr(point[1])}
            )
            page = search_nearby(search, account=_driver_account())
        except FinderInputError as exc:
            status, error = 400, _("This search is not valid: %(name)s.", name=exc.parameter)
        else:
            if page.next_cursor:
                more = {"lat": repr(search.lat), "lon": repr(search.lon), "radius_km": repr(search.radius_km)}
                next_url = _url("finder.results", _filter_args(params), more, {"cursor": page.next_cursor})
    origin = {"lat": repr(point[0]), "lon": repr(point[1])} if point else {}
    next_args = {**_filter_args(params), **({"q": query} if query and place else origin)}
    return (
        render_template(
            "finder/map.html",
            query=query,
            place=place,
            page=page,
            error=error,
            filters=filters,
            params=params,
            selected_connectors=set((params.get("connector") or "").lower().split(",")),
            connector_choices=CONNECTOR_CHOICES,
            min_power_choices=MIN_POWER_CHOICES,
            operators=known_operators(),
            is_driver=_driver_account() is not None,
            plan_name=_plan_name(),
            settings=_map_settings(place or point),
            link_args={**_filter_args(params), **origin},
            has_filters=filters != NO_FILTERS,
            min_power_text=format(filters.min_power_kw.normalize(), "f") if filters.min_power_kw is not None else "",
            next_url=next_url,
            next_page_url=_url("finder.map_page", next_args, {"cursor": page.next_cursor})
            if page is not None and page.next_cursor
            else None,
            location_urls=_location_urls,
        ),
        status,
    )


# --- the data endpoints --------------------------------------------------------------------------------------------


class _MarkerWriter:
    """Markers as JSON, a thousand at a time: the words, the number format and the link prefix are looked up once
    per request, not once per marker (Babel and ``url_for`` cost more than the search itself)."""

    def __init__(self, filter_args: Mapping[str, str]) -> None:
        locale = Locale.parse(str(get_locale()))
        self._symbols = locale.number_symbols
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


def _area_json(area: AreaMarkers, filter_args: Mapping[str, str]) -> dict[str, Any]:
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


@bp.get("/markers")
@limited
def markers() -> ResponseReturnValue:
    params = _params()
    try:
        box = parse_bbox(params.get("bbox"))
        filters = parse_filters(params)
    except FinderInputError as exc:
        return _bad_parameter(exc)
    limit = int(current_app.config["FINDER_MAP_MAX_MARKERS"])
    return jsonify(_area_json(markers_in_area(box, filters, limit=limit, at=utcnow()), _filter_args(params)))


@bp.get("/results")
@limited
def results() -> ResponseReturnValue:
    params = _params()
    try:
        query = parse_nearby({"limit": str(RESULTS_PER_PAGE), **params})
    except FinderInputError as exc:
        return _bad_parameter(exc)
    try:
        page = search_nearby(query, account=_driver_account())
    except FinderInputError as exc:  # a cursor of another search
        return _bad_parameter(exc)
    origin = {"lat": repr(query.lat), "lon": repr(query.lon)}
    more_args = {**_filter_args(params), **origin, "radius_km": repr(query.radius_km)}
    return render_template(
        "finder/_results.html",
        page=page,
        plan_name=_plan_name(),
        link_args={**_filter_args(params), **origin},
        next_url=_url("finder.results", more_args, {"cursor": page.next_cursor}) if page.next_cursor else None,
        next_page_url=_url("finder.map_page", _filter_args(params), origin, {"cursor": page.next_cursor})
        if page.next_cursor
        else None,
        location_urls=_location_urls,
    )


@bp.get("/place")
@limited
def place() -> ResponseReturnValue:
    try:
        found = geocode_place(request.args.get("q") or "", language=str(get_locale()))
    except InvalidPlaceQueryError:
        return _problem(400, _("Type a place, an address or a postcode (at most 200 characters)."), "q")
    except GeocoderUnavailableError:
        return _problem(503, _("Searching places does not work right now. Please try again in a moment."))
    db.session.commit()  # the geocoder's answer is cached
    if found is None:
        query = (request.args.get("q") or "").strip()[:200]
        return _problem(404, _("We could not find “%(place)s”. Try a city, a town or a postcode.", place=query))
    return jsonify({"lat": found.latitude, "lon": found.longitude, "label": found.label, "kind": str(found.kind)})


# --- one location -------------------------------------------------------------------------------------------------


def _details(country_code: str, party_id: str, location_id: str) -> tuple[LocationResult, dict[str, str]]:
    if len(country_code) != 2 or len(party_id) != 3 or not 0 < len(location_id) <= MAX_LOCATION_ID_LENGTH:
        raise NotFound()
    params = _params()
    try:
        filters: Filters = parse_filters(params)
    except FinderInputError:
        filters = NO_FILTERS
    found = location_details(
        country_code, party_id, location_id, account=_driver_account(), filters=filters, origin=_origin(params)
    )
    if found is None:
        raise NotFound()  # unknown, unpublished, removed, or of a removed partner: never shown
    return found, params


@bp.get("/locations/<country_code>/<party_id>/<location_id>")
@limited
def location(country_code: str, party_id: str, location_id: str) -> ResponseReturnValue:
    found, params = _details(country_code, party_id, location_id)
    back = {**_filter_args(params), **{k: params[k] for k in ("q", "lat", "lon") if params.get(k)}}
    return render_template(
        "finder/location.html", location=found, plan_name=_plan_name(), back_url=_url("finder.map_page", back)
    )


@bp.get("/locations/<country_code>/<party_id>/<location_id>/panel")
@limited
def panel(country_code: str, party_id: str, location_id: str) -> ResponseReturnValue:
    found, params = _details(country_code, party_id, location_id)
    page_url, _panel_url = _location_urls(
        found, {**_filter_args(params), **{k: params[k] for k in ("lat", "lon") if params.get(k)}}
    )
    return render_template("finder/_panel.html", location=found, plan_name=_plan_name(), page_url=page_url)
