"""The charger finder's portal door: the map page ``/map`` for drivers and visitors.

- ``GET /map``: the page. Without JavaScript it is a search form and the server-rendered list of results with
  their prices (pages by ``cursor``): near a searched place (``q``) or a point (``lat``, ``lon``), nearest first
  or cheapest first for the driver (``sort=distance|price``); or along a route (``mode=route``): a route handed
  over as a Google encoded ``polyline`` (a link from the app or a phone's navigation) or a typed start and
  destination (``from``, ``to``: the straight line between them, named so; see :mod:`app.finder.route_request`),
  within ``corridor_km``, in the order of the route. With JavaScript (``static/js/finder.js``) it is also a
  Leaflet map (with the route drawn) whose markers, list and details come from the endpoints below.
- ``GET /map/markers?bbox=west,south,east,north&<filters>``: JSON, the locations in the visible area
  (:mod:`app.finder.area`: markers, or grid cells when the area holds more than ``FINDER_MAP_MAX_MARKERS``).
- ``GET /map/results?lat=&lon=&radius_km=&sort=&<filters>&cursor=`` (nearest or cheapest first), or
  ``?polyline=&corridor_km=&<filters>&cursor=`` (along the route): the list, as an HTML fragment.
- ``GET /map/place?q=``: JSON, a typed place geocoded (404 unknown, 503 geocoder down: "try again").
- ``GET /map/locations/<cc>/<party>/<id>`` (page) and ``.../panel`` (fragment): one location with the driver's
  price under their plan (a visitor: Pay-as-you-go), the CPO tariff in words, the navigation links and, for a
  signed-in driver, "Start charging" on each EVSE the CPO can start remotely (the portal's start page; visitors
  are asked to sign in).

The filters have the API's names (``connector``, repeated or comma-separated, ``min_power_kw``, ``power_type``,
``available``, ``operator``, ``open_now``, ``my_cards``), parsed by :func:`app.finder.queries.parse_filters`. Bad
parameters of the data endpoints answer 400 with a JSON problem naming the parameter; the page shows them. Anonymous
use is rate-limited (``FINDER_MAP_RATE_LIMIT``, one budget for the page and its endpoints, per address).

A polyline in the address is bounded by what the web server accepts in a request line (gunicorn: 4094 bytes by
default, ~ a few hundred route points); longer routes are for the JSON API (``/api/v1/locations/along-route``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
from app.finder.area import Marker, known_operators, markers_in_area, parse_bbox
from app.finder.display import TEMPLATE_FILTERS, StartOffer, area_json, map_settings, start_offer
from app.finder.driver_plan import plan_for
from app.finder.filters import NO_FILTERS, Filters
from app.finder.geocoding import GeocoderUnavailableError, InvalidPlaceQueryError, Place, geocode_place
from app.finder.queries import (
    DEFAULT_CORRIDOR_KM,
    MAX_NUMBER_LENGTH,
    FinderInputError,
    NearbyQuery,
    RouteQuery,
    SortOrder,
    parse_filters,
    parse_nearby,
    parse_route,
)
from app.finder.results import LocationResult, SearchPage
from app.finder.route_request import (
    ROUTE,
    PageSearchError,
    RouteRequest,
    find_place,
    route_request,
    search_mode,
)
from app.finder.services import location_details, search_along_route, search_nearby

bp = Blueprint("finder", __name__, url_prefix="/map")
for _name, _filter in TEMPLATE_FILTERS.items():
    bp.add_app_template_filter(_filter, _name)

# The endpoints the page's script calls: their refusals are JSON, whatever went wrong.
DATA_ENDPOINTS = frozenset({"finder.markers", "finder.results", "finder.place", "finder.panel"})
FILTER_PARAMETERS = ("connector", "min_power_kw", "power_type", "available", "operator", "open_now", "my_cards")
RESULTS_PER_PAGE = 20
# The connector standards offered as check boxes (friendly names of app.finder.filters), with their labels.
CONNECTOR_CHOICES = (("type2", "Type 2"), ("ccs", "CCS"), ("chademo", "CHAdeMO"), ("type1", "Type 1"))
MIN_POWER_CHOICES = ("3.7", "11", "22", "50", "100", "150")
CORRIDOR_CHOICES = ("1", "2", "5", "10", "25")  # km on either side of the route (at most MAX_CORRIDOR_KM)
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


# --- helpers for the templates ---------------------------------------------------------------------------------


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


def _sort_args(query: NearbyQuery) -> dict[str, str]:
    """The order in the links of later pages (a cursor belongs to one order); the default is left out."""
    return {} if query.sort == SortOrder.DISTANCE else {"sort": query.sort.value}


def _route_args(params: Mapping[str, str], route_polyline: str, query: RouteQuery) -> dict[str, str]:
    """The route in the page's links: the typed places when there are (the page names them again), else the
    polyline."""
    places = {name: params[name].strip() for name in ("from", "to") if (params.get(name) or "").strip()}
    where = places if len(places) == 2 else {"polyline": route_polyline}
    return {"mode": ROUTE, **where, "corridor_km": f"{query.corridor_km:g}"}


# --- the page -----------------------------------------------------------------------------------------------------


@dataclass
class _PageSearch:
    """What the page found for its parameters, and the links of the list's next page."""

    status: int = 200
    error: str | None = None
    place: Place | None = None
    point: tuple[float, float] | None = None
    route: RouteRequest | None = None
    corridor_km: float = DEFAULT_CORRIDOR_KM
    sort: SortOrder = SortOrder.DISTANCE
    page: SearchPage | None = None
    link_args: dict[str, str] = field(default_factory=dict)  # what each result's links carry
    next_url: str | None = None  # the list's next page as a fragment (the script)
    next_page_url: str | None = None  # the same as the whole page (without the script)

    def refuse(self, status: int, error: str) -> None:
        self.status, self.error = status, error


def _search_near(found: _PageSearch, params: Mapping[str, str], query: str) -> None:
    if query:
        found.place = find_place(query, language=str(get_locale()))
        found.point = (found.place.latitude, found.place.longitude)
    elif params.get("lat") or params.get("lon"):
        found.point = _origin(params)
        if found.point is None:
            raise PageSearchError(400, _("This location is not valid."), "lat")
    if found.point is None:
        return
    search = parse_nearby(
        {"limit": str(RESULTS_PER_PAGE), **params, "lat": repr(found.point[0]), "lon": repr(found.point[1])}
    )
    found.sort = search.sort
    found.page = search_nearby(search, account=_driver_account())
    origin = {"lat": repr(search.lat), "lon": repr(search.lon)}
    found.link_args = {**_filter_args(params), **origin}
    cursor = found.page.next_cursor
    if cursor:
        more = {**origin, "radius_km": repr(search.radius_km), **_sort_args(search), "cursor": cursor}
        found.next_url = _url("finder.results", _filter_args(params), more)
        again = {"q": query} if query else origin
        found.next_page_url = _url(
            "finder.map_page", _filter_args(params), again, _sort_args(search), {"cursor": cursor}
        )


def _search_route(found: _PageSearch, params: Mapping[str, str]) -> None:
    chosen = (params.get("corridor_km") or "").strip()
    if chosen in CORRIDOR_CHOICES:
        found.corridor_km = float(chosen)  # the form keeps the driver's choice, even before a route is given
    found.route = route_request(params, language=str(get_locale()))
    if found.route is None:
        return
    search = parse_route({"limit": str(RESULTS_PER_PAGE), **params, "polyline": found.route.polyline})
    found.corridor_km = search.corridor_km
    found.page = search_along_route(search, account=_driver_account())
    found.link_args = _filter_args(params)
    cursor = found.page.next_cursor
    if cursor:
        carried = _route_args(params, found.route.polyline, search)
        fragment = {**carried, "polyline": found.route.polyline, "cursor": cursor}
        found.next_url = _url("finder.results", _filter_args(params), fragment)
        found.next_page_url = _url("finder.map_page", _filter_args(params), carried, {"cursor": cursor})


@bp.get("")
@limited
def map_page() -> ResponseReturnValue:
    params = _params()
    query = (request.args.get("q") or "").strip()
    found = _PageSearch()
    mode = "near"
    try:
        filters = parse_filters(params)
    except FinderInputError as exc:
        filters = NO_FILTERS
        found.refuse(400, _("This filter is not valid: %(name)s.", name=exc.parameter))
    if found.error is None:
        try:
            mode = search_mode(params)
            if mode == ROUTE:
                _search_route(found, params)
            else:
                _search_near(found, params, query)
        except PageSearchError as exc:
            found.refuse(exc.status, exc.message)
        except FinderInputError as exc:
            found.refuse(400, _("This search is not valid: %(name)s.", name=exc.parameter))
    db.session.commit()  # the geocoder's answers are cached, found or not; the searches write nothing
    return (
        render_template(
            "finder/map.html",
            query=query,
            mode=mode,
            found=found,
            place=found.place,
            route=found.route,
            page=found.page,
            error=found.error,
            filters=filters,
            params=params,
            sort=found.sort.value,
            corridor=Decimal(f"{found.corridor_km:g}"),
            corridor_text=f"{found.corridor_km:g}",
            corridor_choices=CORRIDOR_CHOICES,
            selected_connectors=set((params.get("connector") or "").lower().split(",")),
            connector_choices=CONNECTOR_CHOICES,
            min_power_choices=MIN_POWER_CHOICES,
            operators=known_operators(),
            is_driver=_driver_account() is not None,
            plan_name=_plan_name(),
            settings=map_settings(
                mode=mode, place=found.place, point=found.point, route=found.route, corridor_km=found.corridor_km
            ),
            link_args=found.link_args,
            has_filters=filters != NO_FILTERS,
            min_power_text=format(filters.min_power_kw.normalize(), "f") if filters.min_power_kw is not None else "",
            next_url=found.next_url,
            next_page_url=found.next_page_url,
            location_urls=_location_urls,
        ),
        found.status,
    )


# --- the data endpoints --------------------------------------------------------------------------------------------


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
    return jsonify(area_json(markers_in_area(box, filters, limit=limit, at=utcnow()), _filter_args(params)))


def _results_fragment(
    page: SearchPage, link_args: Mapping[str, str], next_url: str | None, next_page: str | None
) -> str:
    return render_template(
        "finder/_results.html",
        page=page,
        plan_name=_plan_name(),
        link_args=link_args,
        next_url=next_url,
        next_page_url=next_page,
        location_urls=_location_urls,
    )


def _route_results(params: Mapping[str, str]) -> ResponseReturnValue:
    try:
        query = parse_route({"limit": str(RESULTS_PER_PAGE), **params})
        page = search_along_route(query, account=_driver_account())
    except FinderInputError as exc:  # a bad polyline or corridor, a cursor of another search
        return _bad_parameter(exc)
    if not page.next_cursor:
        return _results_fragment(page, _filter_args(params), None, None)
    carried = _route_args(params, query.polyline, query)
    fragment = {**carried, "polyline": query.polyline, "cursor": page.next_cursor}
    return _results_fragment(
        page,
        _filter_args(params),
        _url("finder.results", _filter_args(params), fragment),
        _url("finder.map_page", _filter_args(params), carried, {"cursor": page.next_cursor}),
    )


@bp.get("/results")
@limited
def results() -> ResponseReturnValue:
    params = _params()
    if "polyline" in params:
        return _route_results(params)
    try:
        query = parse_nearby({"limit": str(RESULTS_PER_PAGE), **params})
        page = search_nearby(query, account=_driver_account())
    except FinderInputError as exc:  # a bad parameter, a cursor of another search
        return _bad_parameter(exc)
    origin = {"lat": repr(query.lat), "lon": repr(query.lon)}
    if not page.next_cursor:
        return _results_fragment(page, {**_filter_args(params), **origin}, None, None)
    more = {**origin, "radius_km": repr(query.radius_km), **_sort_args(query), "cursor": page.next_cursor}
    return _results_fragment(
        page,
        {**_filter_args(params), **origin},
        _url("finder.results", _filter_args(params), more),
        _url("finder.map_page", _filter_args(params), origin, _sort_args(query), {"cursor": page.next_cursor}),
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


def _start_offer(found: LocationResult, page_url: str) -> StartOffer:
    return start_offer(found, page_url, driver=_driver_account() is not None, signed_in=current_user.is_authenticated)


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
    page_url, _panel_url = _location_urls(found, _filter_args(params))
    return render_template(
        "finder/location.html",
        location=found,
        plan_name=_plan_name(),
        back_url=_url("finder.map_page", back),
        start=_start_offer(found, page_url),
    )


@bp.get("/locations/<country_code>/<party_id>/<location_id>/panel")
@limited
def panel(country_code: str, party_id: str, location_id: str) -> ResponseReturnValue:
    found, params = _details(country_code, party_id, location_id)
    page_url, _panel_url = _location_urls(
        found, {**_filter_args(params), **{k: params[k] for k in ("lat", "lon") if params.get(k)}}
    )
    return render_template(
        "finder/_panel.html",
        location=found,
        plan_name=_plan_name(),
        page_url=page_url,
        start=_start_offer(found, page_url),
    )
