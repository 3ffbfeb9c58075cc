"""``GET /api/v1/geocode?q=``: where a typed place is ("Gent", "Gand", "3500", "1012 AB"), to search near it.

The finder's geocoder (:func:`app.finder.geocoding.geocode_place`: the offline gazetteer of Belgian and Dutch places
by default, or our own Nominatim/Photon server), its answers cached in the database (hence the commit of a GET).
The label is in the caller's language ("Gand, Belgique" for a French speaker). An unknown place is a 404
``place_not_found`` saying so; a geocoder that does not answer, a 503 ``geocoder_unavailable`` (try again). Anyone
may ask, within the finder's rate limit (:mod:`app.api.finder_access`).

The answer is a list (``places``) so that an app need not change when the geocoder offers several candidates;
the finder's service answers its best match, so the list holds one place today.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from app.api.finder_access import FinderBlueprint, finder_limit, invalid_parameters
from app.api.problems import ApiProblem, caller_language
from app.api.reads import writes_on_get
from app.api.schemas import text
from app.extensions import db
from app.finder.gazetteer import PlaceKind
from app.finder.geocoding import MAX_QUERY_LENGTH, GeocoderUnavailableError, InvalidPlaceQueryError, geocode_place

blp = FinderBlueprint(
    "api_geocode", __name__, tag="Places", url_prefix="/api/v1/geocode", description="Find a typed place"
)

_TYPE_A_PLACE = _l("Type a place, an address or a postcode (at most 200 characters).")


class GeocodeArgs(Schema):
    q = text(MAX_QUERY_LENGTH, required=True, min_length=1, metadata={"description": "What the driver typed."})
    country = fields.String(
        validate=validate.Regexp(r"^[A-Za-z]{2}$"),
        metadata={"description": "Prefer places of this country when a name is ambiguous (BE, NL).", "example": "BE"},
    )


class PlaceOut(Schema):
    name = fields.String(
        required=True, metadata={"description": "What was found, to check.", "example": "Gent, België"}
    )
    kind = fields.String(required=True, validate=validate.OneOf([kind.value for kind in PlaceKind]))
    lat = fields.Float(required=True, metadata={"example": 51.05})
    lon = fields.Float(required=True, metadata={"example": 3.71667})
    country = fields.String(required=True, allow_none=True, metadata={"description": "ISO 3166 alpha-2."})


class PlacesOut(Schema):
    places = fields.List(fields.Nested(PlaceOut), required=True, metadata={"description": "Best match first."})


@blp.route("", methods=["GET"])
@finder_limit
@blp.arguments(GeocodeArgs, location="query")
@blp.response(200, PlacesOut)
@blp.alt_response(404, response="NOT_FOUND", description="No such place: place_not_found.")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="The geocoder did not answer: try again.")
@blp.doc(security=[])
@writes_on_get  # the geocoder's answer is cached
def geocode(args: dict[str, Any]) -> dict[str, Any]:
    """Where a typed place is: its name as found, its kind (city, postcode, address), coordinates and country."""
    try:
        place = geocode_place(args["q"], language=caller_language(), country_hint=args.get("country"))
    except InvalidPlaceQueryError as error:
        name = "country" if error.parameter == "country_hint" else "q"
        raise invalid_parameters({name: [_TYPE_A_PLACE if name == "q" else str(error)]}, f"{name}: {error}") from None
    except GeocoderUnavailableError as error:
        raise ApiProblem(
            503,
            "geocoder_unavailable",
            _l("Searching places does not work right now. Please try again in a moment."),
            detail=str(error),
        ) from None
    db.session.commit()  # the geocoder's answer (found or not) is cached
    if place is None:
        typed = " ".join(args["q"].split())[:MAX_QUERY_LENGTH]
        raise ApiProblem(
            404,
            "place_not_found",
            _l("We could not find “%(place)s”. Try a city, a town or a postcode.", place=typed),
            detail=f"q: no place called {typed!r}",
            errors={"q": [_l("We could not find “%(place)s”. Try a city, a town or a postcode.", place=typed)]},
        )
    return {
        "places": [
            {
                "name": place.label,
                "kind": place.kind.value,
                "lat": place.latitude,
                "lon": place.longitude,
                "country": place.country,
            }
        ]
    }
