"""``/api/v1/locations``: where can I charge, and what will it cost me? The finder's searches for the app.

- ``GET /nearby?lat=&lon=&radius_km=&limit=&sort=&cursor=`` + filters: nearest first (or cheapest first for the
  caller), a page at a time (:func:`app.finder.services.search_nearby`);
- ``GET /along-route?polyline=&corridor_km=&limit=&cursor=`` + filters: in the order the route reaches them
  (:func:`~app.finder.services.search_along_route`);
- ``GET /{country_code}/{party_id}/{id}``: one location (:func:`~app.finder.services.location_details`); the ids are
  OCPI CiStrings (any case finds it); unknown, unpublished, removed → 404.

Anyone may ask (rate-limited, :mod:`app.api.finder_access`); a signed-in driver's results carry the price under
their own plan, a visitor's under Pay-as-you-go, and only a signed-in driver may ask for ``my_cards``. The finder
computes everything (read-only: nothing here commits); this module only checks and writes down.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from flask import Response
from flask_babel import lazy_gettext as _l

from app.api.answers import json_answer
from app.api.finder_access import FinderBlueprint, caller_account, finder_limit, invalid_parameters
from app.api.location_schemas import (
    DetailsArgs,
    LocationOut,
    LocationPageOut,
    NearbyArgs,
    PricePresenter,
    RouteArgs,
    filters_of,
    present_location,
)
from app.api.problems import ApiProblem, in_caller_language
from app.finder.filters import Filters
from app.finder.queries import FinderInputError, NearbyQuery, RouteQuery, SortOrder
from app.finder.results import SearchPage
from app.finder.services import location_details, search_along_route, search_nearby

blp = FinderBlueprint(
    "api_locations",
    __name__,
    tag="Charging locations",
    url_prefix="/api/v1/locations",
    description="Find charge points and your price there (no sign-in needed)",
)

# OCPI: CiString(2), CiString(3), CiString(36).
ONE_LOCATION = "/<string(length=2):country_code>/<string(length=3):party_id>/<string(minlength=1,maxlength=36):id>"
_SIGN_IN_FOR_MY_CARDS = _l("Sign in to see where your cards work.")


def _bad(error: FinderInputError) -> ApiProblem:
    # The finder's words are English: the parameter is named, the message for people is translated.
    return invalid_parameters({error.parameter: [error.message]}, str(error))


def _filters(args: dict[str, Any]) -> Filters:
    filters = filters_of(args)
    if filters.my_cards and caller_account() is None:
        raise ApiProblem(
            401,
            "sign_in_required",
            _SIGN_IN_FOR_MY_CARDS,
            detail="my_cards: needs a signed-in driver (Authorization: Bearer).",
            errors={"my_cards": [_SIGN_IN_FOR_MY_CARDS]},
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    return filters


def _answer(page: SearchPage) -> Response:
    # Already in LocationPageOut's JSON form: sent as is, not dumped again (see present_location).
    prices = PricePresenter()
    return json_answer({"items": [present_location(item, prices) for item in page.items], "next": page.next_cursor})


@blp.route("/nearby", methods=["GET"])
@finder_limit
@blp.arguments(NearbyArgs, location="query")
@blp.response(200, LocationPageOut)
@blp.alt_response(401, response="UNAUTHORIZED", description="my_cards without signing in, or a bad token.")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.doc(security=[])
def nearby(args: dict[str, Any]) -> Response:
    """Charge points near a point that pass the filters: nearest first, or cheapest for you first (`sort=price`)."""
    try:
        query = NearbyQuery(
            lat=args["lat"],
            lon=args["lon"],
            radius_km=args["radius_km"],
            limit=args["limit"],
            sort=SortOrder(args["sort"]),
            filters=_filters(args),
            cursor=args.get("cursor"),
        )
        with in_caller_language():
            return _answer(search_nearby(query, account=caller_account()))
    except FinderInputError as error:
        raise _bad(error) from None


@blp.route("/along-route", methods=["GET"])
@finder_limit
@blp.arguments(RouteArgs, location="query")
@blp.response(200, LocationPageOut)
@blp.alt_response(401, response="UNAUTHORIZED", description="my_cards without signing in, or a bad token.")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.doc(security=[])
def along_route(args: dict[str, Any]) -> Response:
    """Charge points within the corridor of a route that pass the filters, in the order the route reaches them."""
    try:
        query = RouteQuery(
            polyline=args["polyline"],
            corridor_km=args["corridor_km"],
            limit=args["limit"],
            filters=_filters(args),
            cursor=args.get("cursor"),
        )
        with in_caller_language():
            return _answer(search_along_route(query, account=caller_account()))
    except FinderInputError as error:
        raise _bad(error) from None


def _printable(*parts: str) -> bool:
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for part in parts for ch in part)


@blp.route(ONE_LOCATION, methods=["GET"])
@finder_limit
@blp.arguments(DetailsArgs, location="query")
@blp.response(200, LocationOut)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.doc(security=[])
def one_location(args: dict[str, Any], country_code: str, party_id: str, id: str) -> Response:
    """One charge point with your price (the connector filters choose the connectors priced; `lat` and `lon`, the
    distance). Ids in any case; unknown, unpublished or removed: 404."""
    if ("lat" in args) != ("lon" in args):
        missing = "lon" if "lat" in args else "lat"
        raise invalid_parameters({missing: [_l("Give lat and lon together.")]}, f"{missing}: give lat and lon together")
    origin = (args["lat"], args["lon"]) if "lat" in args else None
    if _printable(country_code, party_id, id):  # a NUL never reaches the database
        with in_caller_language():
            found = location_details(
                country_code, party_id, id, account=caller_account(), filters=filters_of(args), origin=origin
            )
            if found is not None:
                return json_answer(present_location(found))  # already LocationOut's JSON form
    raise ApiProblem(404, "location_not_found", _l("This charging location is not known."))
