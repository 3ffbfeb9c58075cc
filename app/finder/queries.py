"""What a door asks the finder: typed queries, and how a door's raw parameters become one.

A door (the JSON API, the portal's map page) hands its query-string parameters to :func:`parse_nearby` or
:func:`parse_route` and gets a typed query, or a :class:`FinderInputError` naming the parameter and what is wrong
with it (the API answers 400 with it). The typed queries check their own values too, so a caller building one
directly gets the same errors. The parameter names are the API's: ``lat``, ``lon``, ``radius_km``, ``limit``,
``sort``, ``cursor``, ``polyline``, ``corridor_km`` and the filters ``connector`` (comma-separated names: "type2",
"ccs", "chademo" or OCPI ConnectorTypes), ``min_power_kw``, ``power_type`` (AC or DC), ``available``,
``operator``, ``open_now`` and ``my_cards`` (true/false).
"""

from __future__ import annotations

import enum
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from app.finder.filters import NO_FILTERS, Current, Filters, connector_types

DEFAULT_RADIUS_KM = 10.0
MAX_RADIUS_KM = 100.0
DEFAULT_CORRIDOR_KM = 2.0
MAX_CORRIDOR_KM = 25.0
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_POWER_FILTER_KW = Decimal(1000)
MAX_OPERATOR_LENGTH = 100
MAX_NUMBER_LENGTH = 32
MAX_CURSOR_LENGTH = 512


class FinderInputError(ValueError):
    """A parameter of a search is missing or wrong; ``parameter`` names it (as the API spells it)."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        self.message = message
        super().__init__(f"{parameter}: {message}")


class SortOrder(enum.StrEnum):
    DISTANCE = "distance"
    PRICE = "price"  # the driver's all-in price of a typical session, cheapest first; unknown prices last


def _check_range(parameter: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise FinderInputError(parameter, f"must be a number in {bracket}{low:g}, {high:g}]")


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise FinderInputError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")


def _check_cursor(cursor: str | None) -> None:
    if cursor is not None and (not cursor or len(cursor) > MAX_CURSOR_LENGTH):
        raise FinderInputError("cursor", "is not a cursor of this search")


@dataclass(frozen=True)
class NearbyQuery:
    """Locations within ``radius_km`` of (lat, lon)."""

    lat: float
    lon: float
    radius_km: float = DEFAULT_RADIUS_KM
    limit: int = DEFAULT_LIMIT
    sort: SortOrder = SortOrder.DISTANCE
    filters: Filters = field(default=NO_FILTERS)
    cursor: str | None = None

    def __post_init__(self) -> None:
        _check_range("lat", self.lat, -90, 90)
        _check_range("lon", self.lon, -180, 180)
        _check_range("radius_km", self.radius_km, 0, MAX_RADIUS_KM, low_open=True)
        _check_limit(self.limit)
        _check_cursor(self.cursor)
        _check_filters(self.filters)


@dataclass(frozen=True)
class RouteQuery:
    """Locations within ``corridor_km`` of a route (a Google encoded polyline), in the order of the route."""

    polyline: str
    corridor_km: float = DEFAULT_CORRIDOR_KM
    limit: int = DEFAULT_LIMIT
    filters: Filters = field(default=NO_FILTERS)
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not self.polyline:
            raise FinderInputError("polyline", "is required")
        _check_range("corridor_km", self.corridor_km, 0, MAX_CORRIDOR_KM, low_open=True)
        _check_limit(self.limit)
        _check_cursor(self.cursor)
        _check_filters(self.filters)


def _check_filters(filters: Filters) -> None:
    if filters.min_power_kw is not None:
        value = filters.min_power_kw
        if not value.is_finite() or not 0 <= value <= MAX_POWER_FILTER_KW:
            raise FinderInputError("min_power_kw", f"must be a number from 0 to {MAX_POWER_FILTER_KW}")
    if filters.operator is not None:
        _check_operator(filters.operator)


def _check_operator(operator: str) -> None:
    if not operator or len(operator) > MAX_OPERATOR_LENGTH:
        raise FinderInputError("operator", f"must be a name of 1 to {MAX_OPERATOR_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in operator):
        raise FinderInputError("operator", "must not contain control characters")


# --- raw parameters -------------------------------------------------------------------------------------------

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FinderInputError(name, "must be text")
    return value.strip()


def _number(params: Mapping[str, str], name: str, default: float | None = None) -> float:
    text = _text(params, name)
    if text is None or text == "":
        if default is None:
            raise FinderInputError(name, "is required")
        return default
    if len(text) > MAX_NUMBER_LENGTH:
        raise FinderInputError(name, "is not a number")
    try:
        value = float(text)
    except ValueError:
        raise FinderInputError(name, "is not a number") from None
    if not math.isfinite(value):
        raise FinderInputError(name, "is not a number")
    return value


def _whole(params: Mapping[str, str], name: str, default: int) -> int:
    text = _text(params, name)
    if text is None or text == "":
        return default
    if len(text) > MAX_NUMBER_LENGTH or not text.isdigit():
        raise FinderInputError(name, f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _flag(params: Mapping[str, str], name: str) -> bool:
    text = _text(params, name)
    if text is None:
        return False
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise FinderInputError(name, "must be true or false")


def parse_filters(params: Mapping[str, str]) -> Filters:
    types: set[str] = set()
    connectors = _text(params, "connector")
    if connectors:
        for name in connectors.split(","):
            if not name.strip():
                continue
            found = connector_types(name)
            if found is None:
                raise FinderInputError("connector", f"unknown connector {name.strip()[:40]!r}")
            types |= found
    min_power = None
    text = _text(params, "min_power_kw")
    if text:
        try:
            min_power = Decimal(text) if len(text) <= MAX_NUMBER_LENGTH else None
        except InvalidOperation:
            min_power = None
        if min_power is None or not min_power.is_finite():
            raise FinderInputError("min_power_kw", "is not a number")
    current = None
    text = _text(params, "power_type")
    if text:
        try:
            current = Current(text.upper())
        except ValueError:
            raise FinderInputError("power_type", "must be AC or DC") from None
    operator = _text(params, "operator") or None
    filters = Filters(
        connector_types=frozenset(types),
        min_power_kw=min_power,
        current=current,
        available_now=_flag(params, "available"),
        operator=operator,
        open_now=_flag(params, "open_now"),
        my_cards=_flag(params, "my_cards"),
    )
    _check_filters(filters)
    return filters


def parse_nearby(params: Mapping[str, str]) -> NearbyQuery:
    """A door's parameters → a :class:`NearbyQuery` (``lat`` and ``lon`` required)."""
    sort_text = (_text(params, "sort") or SortOrder.DISTANCE).lower()
    try:
        sort = SortOrder(sort_text)
    except ValueError:
        raise FinderInputError("sort", "must be distance or price") from None
    return NearbyQuery(
        lat=_number(params, "lat"),
        lon=_number(params, "lon"),
        radius_km=_number(params, "radius_km", DEFAULT_RADIUS_KM),
        limit=_whole(params, "limit", DEFAULT_LIMIT),
        sort=sort,
        filters=parse_filters(params),
        cursor=_text(params, "cursor") or None,
    )


def parse_route(params: Mapping[str, str]) -> RouteQuery:
    """A door's parameters → a :class:`RouteQuery` (``polyline`` required; it is not stripped: blanks are part of
    no polyline, and the decoder names them)."""
    polyline = params.get("polyline")
    if not polyline:
        raise FinderInputError("polyline", "is required")
    return RouteQuery(
        polyline=polyline,
        corridor_km=_number(params, "corridor_km", DEFAULT_CORRIDOR_KM),
        limit=_whole(params, "limit", DEFAULT_LIMIT),
        filters=parse_filters(params),
        cursor=_text(params, "cursor") or None,
    )
