"""What the map page searches from: a typed place, or the route a driver gave, resolved into something the finder's
services can search (:mod:`app.finder.services`).

A route comes in one of two ways:

- handed over as a Google encoded polyline (``polyline``): what a phone's navigation or our app passes in a link.
  That is the real road route, searched as it is;
- typed as a start and a destination (``from``, ``to``), each geocoded like the place search. We have no routing
  engine and no road graph, so we cannot compute the road between them: the route is the straight line (the great
  circle) between the two places, and the page names it so ("straight line between A and B"), rather than pretend.

Errors come as :class:`PageSearchError` with a translated message and the HTTP status the page answers with; the
geocoder's answers are cached in the database (:func:`app.finder.geocoding.geocode_place` flushes, the door
commits). Nothing else is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask_babel import gettext as _

from app.finder.geocoding import GeocoderUnavailableError, InvalidPlaceQueryError, Place, geocode_place
from app.finder.route import Point, PolylineError, decode_polyline, encode_polyline

# A route is drawn with at most this many points: enough for a road at map zoom, little enough for the page
# (a navigation SDK's polyline of a long trip holds tens of thousands).
MAX_DRAWN_POINTS = 1000
MAX_PLACE_LENGTH = 200

NEAR = "near"
ROUTE = "route"


class PageSearchError(Exception):
    """What the driver typed or passed cannot be searched: ``message`` says why in their language."""

    def __init__(self, status: int, message: str, parameter: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter


@dataclass(frozen=True)
class RouteRequest:
    polyline: str  # what the finder searches along
    label: str  # the route in words, e.g. "straight line between Utrecht, Netherlands and Amersfoort, Netherlands"
    start: Place | None  # the typed places (None: a route handed over as a polyline)
    end: Place | None
    drawn: tuple[Point, ...]  # the route's points to draw, at most MAX_DRAWN_POINTS, first and last kept

    @property
    def straight(self) -> bool:
        return self.start is not None


def search_mode(params: Mapping[str, str]) -> str:
    """``near`` (a place or a point) or ``route``: as the page's ``mode`` says; without it (an older link, a link
    from the app), a route when one is given and no place is typed."""
    mode = (params.get("mode") or "").strip().lower()
    if mode in (NEAR, ROUTE):
        return mode
    if mode:
        raise PageSearchError(400, _("This search is not valid: %(name)s.", name="mode"), "mode")
    given = any((params.get(name) or "").strip() for name in ("polyline", "from", "to"))
    return ROUTE if given and not (params.get("q") or "").strip() else NEAR


def find_place(text: str, *, language: str, parameter: str = "q") -> Place:
    """The typed place (``parameter`` names the field), or :class:`PageSearchError` saying why there is none."""
    try:
        place = geocode_place(text, language=language)
    except InvalidPlaceQueryError:
        message = _("Type a place, an address or a postcode (at most 200 characters).")
        raise PageSearchError(400, message, parameter) from None
    except GeocoderUnavailableError:
        message = _("Searching places does not work right now. Please try again in a moment.")
        raise PageSearchError(503, message, parameter) from None
    if place is None:
        shown = text.strip()[:MAX_PLACE_LENGTH]
        message = _("We could not find “%(place)s”. Try a city, a town or a postcode.", place=shown)
        raise PageSearchError(200, message, parameter)
    return place


def thinned(points: Sequence[Point], limit: int = MAX_DRAWN_POINTS) -> tuple[Point, ...]:
    """At most ``limit`` (≥ 2) of ``points``, evenly spread, the first and the last always kept."""
    if len(points) <= limit:
        return tuple(points)
    step = (len(points) - 1) / (limit - 1)
    return tuple(points[round(index * step)] for index in range(limit))


def route_request(params: Mapping[str, str], *, language: str) -> RouteRequest | None:
    """The route of the page's parameters: typed places first (what the driver just typed wins over a route passed
    earlier), else a polyline; None when neither is given."""
    start_text = (params.get("from") or "").strip()
    end_text = (params.get("to") or "").strip()
    if start_text or end_text:
        if not (start_text and end_text):
            missing = "to" if start_text else "from"
            raise PageSearchError(400, _("Type both a start and a destination."), missing)
        start = find_place(start_text, language=language, parameter="from")
        end = find_place(end_text, language=language, parameter="to")
        points = ((start.latitude, start.longitude), (end.latitude, end.longitude))
        label = _("straight line between %(start)s and %(end)s", start=start.label, end=end.label)
        return RouteRequest(encode_polyline(points), label, start, end, points)
    polyline = params.get("polyline") or ""
    if not polyline:
        return None
    try:
        decoded = decode_polyline(polyline)
    except PolylineError:
        raise PageSearchError(400, _("This search is not valid: %(name)s.", name="polyline"), "polyline") from None
    if len(decoded) < 2:  # a route has a start and an end
        raise PageSearchError(400, _("This search is not valid: %(name)s.", name="polyline"), "polyline")
    return RouteRequest(polyline, _("the route you shared"), None, None, thinned(decoded))
