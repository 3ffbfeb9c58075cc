"""The finder's API in and out: the query parameters of a search, and a location as the app shows it.

In: the parameters of :mod:`app.finder.queries` with the same names and bounds, typed here for the OpenAPI
document, and turned into the finder's typed queries by :func:`filters_of` (the queries check themselves again).

Out (:func:`present_location`): a :class:`~app.finder.results.LocationResult`, computed by the finder, only
written down: coordinates as OCPI sends them (decimal strings), distances and powers as exact decimal strings,
money as integer minor units with its currency (rounded half-up once, as the invoice rounds), times ISO 8601 with
their offset. A price that is unknown says so (``status: unknown`` with the reason) rather than being left out.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate
from webargs.fields import DelimitedList

from app.api.schemas import MoneyOut, decimal_text, money, text
from app.finder.cursors import MAX_CURSOR_LENGTH
from app.finder.filters import Current, Filters, connector_types
from app.finder.opening_hours import OpeningHours
from app.finder.prices import PriceUnknown, SessionPrice
from app.finder.queries import (
    DEFAULT_CORRIDOR_KM,
    DEFAULT_LIMIT,
    DEFAULT_RADIUS_KM,
    MAX_CORRIDOR_KM,
    MAX_LIMIT,
    MAX_OPERATOR_LENGTH,
    MAX_POWER_FILTER_KW,
    MAX_RADIUS_KM,
    SortOrder,
)
from app.finder.results import ConnectorResult, EvseResult, LocationResult
from app.finder.route import MAX_POLYLINE_LENGTH
from app.finder.tariff_words import TariffWords

MAX_CONNECTOR_NAMES = 10
MAX_CONNECTOR_NAME_LENGTH = 40

# Why a price is unknown, as the map page words it (the same texts, translated once).
UNKNOWN_PRICE: dict[PriceUnknown, LazyString] = {
    PriceUnknown.NO_TARIFF: _l("The operator publishes no tariff for this connector, so we cannot show a price."),
    PriceUnknown.CURRENCY: _l("This tariff is in another currency than your plan, so we cannot show a price."),
    PriceUnknown.COUNTRY: _l("We cannot price charging in this country yet."),
    PriceUnknown.UNPRICEABLE: _l("The operator's tariff cannot be priced in advance."),
    PriceUnknown.NO_PLAN: _l("Prices cannot be shown right now."),
}


# --- in -----------------------------------------------------------------------------------------------------------


def _known_connectors(names: list[str]) -> None:
    unknown = [name for name in names if name.strip() and connector_types(name) is None]
    if unknown:
        raise ValidationError(f"Unknown connector: {', '.join(name[:MAX_CONNECTOR_NAME_LENGTH] for name in unknown)}.")


def _power_filter(value: Decimal) -> None:
    # A plain check, not validate.Range: apispec writes a Decimal bound as a string, which OpenAPI refuses.
    if not 0 <= value <= MAX_POWER_FILTER_KW:
        raise ValidationError(f"Must be from 0 to {MAX_POWER_FILTER_KW}.")


class ConnectorFilterArgs(Schema):
    """The filters of one connector: standard, power, AC/DC and availability hold for the same connector."""

    connector = DelimitedList(
        text(MAX_CONNECTOR_NAME_LENGTH),
        validate=[validate.Length(max=MAX_CONNECTOR_NAMES), _known_connectors],
        metadata={
            "description": 'Comma-separated standards, any of them: "type2", "ccs", "chademo", "type1", ... or OCPI '
            'ConnectorTypes ("IEC_62196_T2_COMBO").',
            "example": ["ccs", "chademo"],
        },
    )
    min_power_kw = fields.Decimal(
        validate=_power_filter,
        metadata={"description": f"At least this power (kW) on the matching connector, 0 to {MAX_POWER_FILTER_KW}."},
    )
    power_type = fields.String(validate=validate.OneOf([Current.AC.value, Current.DC.value]))
    available = fields.Boolean(
        load_default=False, metadata={"description": "A matching connector is available now (the CPO's live status)."}
    )


class FilterArgs(ConnectorFilterArgs):
    """Every filter, all optional, all combinable; and the page."""

    operator = text(MAX_OPERATOR_LENGTH, min_length=1, metadata={"description": "The operator's name, any case."})
    open_now = fields.Boolean(
        load_default=False,
        metadata={"description": "Drop locations known to be closed now (hours unknown: kept, open_now null)."},
    )
    my_cards = fields.Boolean(
        load_default=False,
        metadata={"description": "Only where our cards work (reachable through our partners). Signed-in drivers only."},
    )
    cursor = text(MAX_CURSOR_LENGTH, min_length=1, metadata={"description": "`next` of the previous page, unchanged."})
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))


class NearbyArgs(FilterArgs):
    lat = fields.Float(required=True, validate=validate.Range(min=-90, max=90), metadata={"example": 52.0907})
    lon = fields.Float(required=True, validate=validate.Range(min=-180, max=180), metadata={"example": 5.1214})
    radius_km = fields.Float(
        load_default=DEFAULT_RADIUS_KM, validate=validate.Range(min=0, max=MAX_RADIUS_KM, min_inclusive=False)
    )
    sort = fields.String(
        load_default=SortOrder.DISTANCE.value,
        validate=validate.OneOf([order.value for order in SortOrder]),
        metadata={
            "description": "distance (nearest first) or price (your price of a typical session, cheapest first)."
        },
    )


class RouteArgs(FilterArgs):
    polyline = text(
        MAX_POLYLINE_LENGTH,
        required=True,
        min_length=1,
        metadata={"description": "The route, in Google's encoded polyline format (precision 5)."},
    )
    corridor_km = fields.Float(
        load_default=DEFAULT_CORRIDOR_KM,
        validate=validate.Range(min=0, max=MAX_CORRIDOR_KM, min_inclusive=False),
        metadata={"description": "How far from the route, on either side."},
    )


class DetailsArgs(ConnectorFilterArgs):
    """One location: the connector filters choose the connectors priced; lat and lon (together) give the distance."""

    lat = fields.Float(validate=validate.Range(min=-90, max=90))
    lon = fields.Float(validate=validate.Range(min=-180, max=180))


def filters_of(args: dict[str, Any]) -> Filters:
    """The typed filters of loaded :class:`ConnectorFilterArgs` or :class:`FilterArgs`."""
    types: set[str] = set()
    for name in args.get("connector") or ():
        found = connector_types(name) if name.strip() else None
        if found is not None:
            types |= found
    power_type = args.get("power_type")
    return Filters(
        connector_types=frozenset(types),
        min_power_kw=args.get("min_power_kw"),
        current=Current(power_type) if power_type else None,
        available_now=args.get("available", False),
        operator=args.get("operator"),
        open_now=args.get("open_now", False),
        my_cards=args.get("my_cards", False),
    )


# --- out ----------------------------------------------------------------------------------------------------------


class CoordinatesOut(Schema):
    latitude = fields.String(required=True, metadata={"example": "52.089444"})
    longitude = fields.String(required=True, metadata={"example": "5.110278"})


class TariffOut(Schema):
    text = fields.String(required=True, metadata={"description": "The operator's tariff in words, excl. VAT."})
    alt_text = fields.String(required=True, allow_none=True, metadata={"description": "The operator's own words."})


class PriceOut(Schema):
    """Your all-in price of a typical session at a connector under your plan (visitors: Pay-as-you-go), by the
    engine that bills; or ``unknown`` with the reason: never a guess."""

    status = fields.String(required=True, validate=validate.OneOf(["known", "unknown"]))
    plan = fields.String(required=True, allow_none=True, metadata={"description": "The plan priced with (its code)."})
    kwh = fields.String(required=True, metadata={"description": "The typical session's energy.", "example": "20"})
    minutes = fields.Integer(required=True, metadata={"description": "The typical session's duration."})
    total = fields.Nested(MoneyOut, required=True, allow_none=True, metadata={"description": "Incl. VAT."})
    operator_price = fields.Nested(MoneyOut, required=True, allow_none=True, metadata={"description": "Excl. VAT."})
    our_fees = fields.Nested(MoneyOut, required=True, allow_none=True, metadata={"description": "Excl. VAT."})
    total_excl_vat = fields.Nested(MoneyOut, required=True, allow_none=True)
    vat_rate = fields.String(required=True, allow_none=True, metadata={"example": "21"})
    vat = fields.Nested(MoneyOut, required=True, allow_none=True)
    unknown_reason = fields.String(
        required=True, allow_none=True, validate=validate.OneOf([reason.value for reason in PriceUnknown])
    )
    message = fields.String(required=True, allow_none=True, metadata={"description": "Why unknown, for people."})


class ConnectorOut(Schema):
    id = fields.String(required=True)
    standard = fields.String(required=True, metadata={"description": "OCPI ConnectorType.", "example": "IEC_62196_T2"})
    label = fields.String(required=True, metadata={"example": "Type 2"})
    format = fields.String(required=True, metadata={"example": "SOCKET"})
    power_type = fields.String(required=True, metadata={"example": "AC_3_PHASE"})
    current = fields.String(required=True, validate=validate.OneOf([Current.AC.value, Current.DC.value]))
    power_kw = fields.String(required=True, allow_none=True, metadata={"description": "null: no plausible figure."})
    matches = fields.Boolean(required=True, metadata={"description": "Meets the search's connector filters."})
    price = fields.Nested(PriceOut, required=True, allow_none=True, metadata={"description": "Matching ones only."})
    tariff = fields.Nested(TariffOut, required=True, allow_none=True)


class EvseOut(Schema):
    uid = fields.String(required=True)
    evse_id = fields.String(required=True, allow_none=True)
    status = fields.String(
        required=True, metadata={"description": "Live, as the operator pushes it.", "example": "AVAILABLE"}
    )
    status_updated_at = fields.DateTime(required=True)
    connectors = fields.List(fields.Nested(ConnectorOut), required=True)


class RegularHoursOut(Schema):
    weekday = fields.Integer(required=True, metadata={"description": "1 = Monday … 7 = Sunday."})
    begin = fields.String(required=True, metadata={"example": "08:00"})
    end = fields.String(required=True, metadata={"example": "18:00"})


class PeriodOut(Schema):
    begin = fields.DateTime(required=True)
    end = fields.DateTime(required=True)


class OpeningHoursOut(Schema):
    """In the location's own time zone."""

    twentyfourseven = fields.Boolean(required=True)
    regular_hours = fields.List(fields.Nested(RegularHoursOut), required=True)
    exceptional_openings = fields.List(fields.Nested(PeriodOut), required=True)
    exceptional_closings = fields.List(fields.Nested(PeriodOut), required=True)
    time_zone = fields.String(required=True, metadata={"example": "Europe/Amsterdam"})


class PricedConnectorOut(Schema):
    evse_uid = fields.String(required=True)
    connector_id = fields.String(required=True)


class NavigationOut(Schema):
    google = fields.String(required=True)
    apple = fields.String(required=True)
    waze = fields.String(required=True)
    osm = fields.String(required=True)
    geo = fields.String(required=True, metadata={"example": "geo:52.089444,5.110278"})


class LocationOut(Schema):
    id = fields.String(required=True, metadata={"description": "The operator's location id (OCPI)."})
    country_code = fields.String(required=True, metadata={"example": "NL"})
    party_id = fields.String(required=True, metadata={"example": "TCP"})
    number = fields.Integer(
        required=True, metadata={"description": "Our number for it: the `location` of GET /api/v1/estimate."}
    )
    name = fields.String(required=True, allow_none=True)
    address = fields.String(required=True)
    city = fields.String(required=True)
    postal_code = fields.String(required=True, allow_none=True)
    country = fields.String(required=True, metadata={"description": "ISO 3166 alpha-3.", "example": "NLD"})
    coordinates = fields.Nested(CoordinatesOut, required=True)
    distance_km = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "From the searched point; along a route: from the route.", "example": "1.234"},
    )
    along_route_km = fields.String(
        required=True, allow_none=True, metadata={"description": "Route searches: where the route reaches it."}
    )
    operator = fields.String(required=True, allow_none=True)
    max_power_kw = fields.String(required=True, allow_none=True, metadata={"example": "150"})
    open_now = fields.Boolean(required=True, allow_none=True, metadata={"description": "null: hours unknown."})
    opening_hours = fields.Nested(OpeningHoursOut, required=True, allow_none=True)
    evses = fields.List(fields.Nested(EvseOut), required=True)
    price = fields.Nested(
        PriceOut,
        required=True,
        allow_none=True,
        metadata={"description": "At the cheapest matching connector; null when no connector matches the filters."},
    )
    priced_connector = fields.Nested(PricedConnectorOut, required=True, allow_none=True)
    tariff = fields.Nested(TariffOut, required=True, allow_none=True, metadata={"description": "Of that connector."})
    navigation = fields.Nested(NavigationOut, required=True)
    last_updated = fields.DateTime(required=True)


class LocationPageOut(Schema):
    items = fields.List(fields.Nested(LocationOut), required=True)
    next = fields.String(required=True, allow_none=True, metadata={"description": "null on the last page"})


def _number(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value.normalize())


def _money_or_none(amount: Decimal | None, currency: str | None) -> dict[str, Any] | None:
    return None if amount is None or currency is None else money(amount, currency)


def present_price(price: SessionPrice | None) -> dict[str, Any] | None:
    if price is None:
        return None
    currency = price.currency
    known = price.known and price.incl_vat is not None and currency is not None
    return {
        "status": "known" if known else "unknown",
        "plan": price.plan_code,
        "kwh": decimal_text(price.kwh.normalize()),
        "minutes": price.minutes,
        "total": _money_or_none(price.incl_vat, currency) if known else None,
        "operator_price": _money_or_none(price.cpo_cost, currency) if known else None,
        "our_fees": _money_or_none(price.our_fees, currency) if known else None,
        "total_excl_vat": _money_or_none(price.excl_vat, currency) if known else None,
        "vat_rate": _number(price.vat_rate) if known else None,
        "vat": _money_or_none(price.vat, currency) if known else None,
        "unknown_reason": None if known else (price.unknown or PriceUnknown.UNPRICEABLE).value,
        "message": None if known else str(UNKNOWN_PRICE[price.unknown or PriceUnknown.UNPRICEABLE]),
    }


class PricePresenter:
    """:func:`present_price` once per price of an answer. Connectors priced alike share one :class:`SessionPrice`
    (same tariff version, plan, country and power): a page of 20 locations has ~70 prices and ~10 distinct ones.
    The dicts are shared within the answer, which JSON writes out as often as they appear."""

    def __init__(self) -> None:
        self._presented: dict[int, tuple[SessionPrice, dict[str, Any] | None]] = {}

    def __call__(self, price: SessionPrice | None) -> dict[str, Any] | None:
        if price is None:
            return None
        seen = self._presented.get(id(price))
        if seen is not None and seen[0] is price:  # the price is held: its id is not reused within the answer
            return seen[1]
        presented = present_price(price)
        self._presented[id(price)] = (price, presented)
        return presented


def _tariff(words: TariffWords | None) -> dict[str, Any] | None:
    return None if words is None else {"text": words.text, "alt_text": words.alt_text}


def _connector(connector: ConnectorResult, prices: PricePresenter) -> dict[str, Any]:
    return {
        "id": connector.id,
        "standard": connector.standard,
        "label": connector.label,
        "format": connector.format,
        "power_type": connector.power_type,
        "current": connector.current.value,
        "power_kw": _number(connector.power_kw),
        "matches": connector.matches,
        "price": prices(connector.price),
        "tariff": _tariff(connector.tariff),
    }


def _evse(evse: EvseResult, prices: PricePresenter) -> dict[str, Any]:
    return {
        "uid": evse.uid,
        "evse_id": evse.evse_id,
        "status": evse.status,
        "status_updated_at": evse.status_updated_at.isoformat(),
        "connectors": [_connector(connector, prices) for connector in evse.connectors],
    }


def _period(begin: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    return {"begin": begin.isoformat(), "end": end.isoformat()}


def _hours(hours: OpeningHours | None) -> dict[str, Any] | None:
    if hours is None:
        return None
    return {
        "twentyfourseven": hours.twentyfourseven,
        "regular_hours": [
            {"weekday": period.weekday, "begin": period.begin, "end": period.end} for period in hours.regular
        ],
        "exceptional_openings": [_period(p.begin, p.end) for p in hours.exceptional_openings],
        "exceptional_closings": [_period(p.begin, p.end) for p in hours.exceptional_closings],
        "time_zone": hours.time_zone,
    }


def present_location(found: LocationResult, prices: PricePresenter | None = None) -> dict[str, Any]:
    """One result as :class:`LocationOut`, already in its JSON form (in the caller's language: build it inside
    ``in_caller_language``).

    The views send this as it is, without ``LocationOut().dump``: a page of 20 locations is ~2,800 fields, and
    marshmallow walking them again cost 40% of a search's CPU. So the presenters write what the dump would
    (datetimes as ``isoformat()``, strings as strings); tests/api/test_location_answer_shape.py holds every answer
    to the schema (``dump(load(answer)) == answer``). ``prices``: one :class:`PricePresenter` for a whole page."""
    links = found.navigation
    prices = prices or PricePresenter()
    return {
        "id": found.ocpi_id,
        "country_code": found.country_code,
        "party_id": found.party_id,
        "number": found.id,
        "name": found.name,
        "address": found.address,
        "city": found.city,
        "postal_code": found.postal_code,
        "country": found.country,
        "coordinates": {"latitude": found.latitude, "longitude": found.longitude},
        "distance_km": _number(found.distance_km),
        "along_route_km": _number(found.along_route_km),
        "operator": found.operator,
        "max_power_kw": _number(found.max_power_kw),
        "open_now": found.open_now,
        "opening_hours": _hours(found.opening_hours),
        "evses": [_evse(evse, prices) for evse in found.evses],
        "price": prices(found.price),
        "priced_connector": (
            {"evse_uid": found.priced_connector[0], "connector_id": found.priced_connector[1]}
            if found.priced_connector
            else None
        ),
        "tariff": _tariff(found.tariff),
        "navigation": {
            "google": links.google_maps,
            "apple": links.apple_maps,
            "waze": links.waze,
            "osm": links.openstreetmap,
            "geo": links.geo,
        },
        "last_updated": found.last_updated.isoformat(),
    }
