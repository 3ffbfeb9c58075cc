"""OCPI JSON → pricing model, with errors that name the offending field path.

Why a hand-written parser rather than marshmallow: this package must stay free of the web stack, the parser is
on the hot path of batch re-pricing, and every message must point finance staff at the exact JSON field.
Numbers are read as :class:`~decimal.Decimal` (``json.loads(..., parse_float=Decimal)``): a float never
touches a price. Unknown fields are ignored (OCPI is tolerant on input); unknown enum values are errors,
because silently ignoring e.g. a restriction would change a price.

Who owns which rule: the value rules (JSON with exact Decimals, the exact Decimal of a JSON number, a DateTime
in UTC) are ``app.ocpi_values``'s, shared with the roaming reader (``app.roaming.ocpi.reader``, which reads
everything roaming receives); this module owns pricing's view of a Tariff and a CDR: which fields it needs, the
strict RFC 3339 form it demands of DateTimes, and the wording of :class:`PricingInputError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.ocpi_values import NotANumberError, exact_decimal, load_json, utc_datetime

from .errors import PricingInputError
from .model import (
    CDR_DIMENSIONS,
    DAYS_OF_WEEK,
    NO_RESTRICTIONS,
    RESERVATION_TYPES,
    TARIFF_DIMENSIONS,
    TARIFF_TYPES,
    ZERO,
    CdrInput,
    ChargingPeriod,
    Price,
    PriceComponent,
    Restrictions,
    Tariff,
    TariffElement,
)

_TIME_RE = re.compile(r"([0-1][0-9]|2[0-3]):([0-5][0-9])")
_DATE_RE = re.compile(r"([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def loads(text: str | bytes) -> Any:
    """Decode JSON with every non-integer number as Decimal. Raises PricingInputError on bad JSON."""
    try:
        return load_json(text)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise PricingInputError("", f"invalid JSON: {exc}") from exc


def unwrap_envelope(obj: Any, what: str) -> Any:
    """Accept a bare OCPI object or an OCPI response envelope ``{"data": {...}, "status_code": ...}``."""
    if isinstance(obj, Mapping) and "data" in obj and "elements" not in obj and "charging_periods" not in obj:
        data = obj["data"]
        if isinstance(data, list):
            if len(data) != 1:
                raise PricingInputError("data", f"expected one {what} object, got a list of {len(data)}")
            return data[0]
        return data
    return obj


# ---------------------------------------------------------------------------------------------------- helpers


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PricingInputError(path, f"expected an object, got {type(value).__name__}")
    return value


def _req(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj or obj[key] is None:
        raise PricingInputError(_join(path, key), "missing required field")
    return obj[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _number(value: Any, path: str, *, non_negative: bool = True) -> Decimal:
    try:
        number = exact_decimal(value)  # numbers only: a price quoted as text is an error here
    except NotANumberError:
        raise PricingInputError(path, f"expected a number, got {type(value).__name__}") from None
    if not number.is_finite():
        raise PricingInputError(path, "expected a finite number")
    if non_negative and number < 0:
        raise PricingInputError(path, f"must not be negative, got {number}")
    return number


def _integer(value: Any, path: str) -> int:
    number = _number(value, path)
    if number != number.to_integral_value():
        raise PricingInputError(path, f"expected an integer, got {number}")
    return int(number)


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise PricingInputError(path, f"expected a string, got {type(value).__name__}")
    return value


def _opt(obj: Mapping[str, Any], key: str) -> Any:
    return obj.get(key)


def parse_datetime(value: Any, path: str) -> datetime:
    """RFC 3339 as OCPI allows it; no designator means UTC; offsets are tolerated and converted to UTC."""
    text = _string(value, path)
    if not _DATETIME_RE.fullmatch(text):
        raise PricingInputError(path, f"expected an RFC 3339 date-time like 2015-06-29T20:39:09Z, got {text!r}")
    try:
        return utc_datetime(text)
    except ValueError as exc:
        raise PricingInputError(path, f"invalid date-time {text!r}: {exc}") from exc


def _currency(value: Any, path: str) -> str:
    text = _string(value, path)
    if not re.fullmatch(r"[A-Za-z]{3}", text):
        raise PricingInputError(path, f"expected an ISO 4217 currency code, got {text!r}")
    return text.upper()


def _price(value: Any, path: str) -> Price:
    obj = _obj(value, path)
    excl = _number(_req(obj, "excl_vat", path), _join(path, "excl_vat"))
    incl_raw = _opt(obj, "incl_vat")
    incl = None if incl_raw is None else _number(incl_raw, _join(path, "incl_vat"))
    return Price(excl, incl)


def _time_of_day(value: Any, path: str) -> int:
    match = _TIME_RE.fullmatch(_string(value, path))
    if not match:
        raise PricingInputError(path, f"expected HH:MM (24h, leading zeros), got {value!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _date(value: Any, path: str) -> str:
    text = _string(value, path)
    if not _DATE_RE.fullmatch(text):
        raise PricingInputError(path, f"expected YYYY-MM-DD, got {text!r}")
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError as exc:
        raise PricingInputError(path, f"invalid date {text!r}") from exc
    return text


# ---------------------------------------------------------------------------------------------------- tariff


def _restrictions(value: Any, path: str) -> Restrictions:
    if value is None:
        return NO_RESTRICTIONS
    obj = _obj(value, path)
    kw: dict[str, Any] = {}
    for key in ("start_time", "end_time"):
        if obj.get(key) is not None:
            kw[key] = _time_of_day(obj[key], _join(path, key))
    if kw.get("end_time") == 0:
        kw["end_time"] = 24 * 60  # "To stop at end of the day use: 00:00"
    for key in ("start_date", "end_date"):
        if obj.get(key) is not None:
            kw[key] = _date(obj[key], _join(path, key))
    for key in ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power"):
        if obj.get(key) is not None:
            kw[key] = _number(obj[key], _join(path, key))
    for key in ("min_duration", "max_duration"):
        if obj.get(key) is not None:
            kw[key] = _integer(obj[key], _join(path, key))
    days = obj.get("day_of_week")
    if days is not None:
        if not isinstance(days, list):
            raise PricingInputError(_join(path, "day_of_week"), "expected a list of DayOfWeek values")
        numbers = set()
        for i, day in enumerate(days):
            if day not in DAYS_OF_WEEK:
                raise PricingInputError(f"{path}.day_of_week[{i}]", f"unknown DayOfWeek {day!r}")
            numbers.add(DAYS_OF_WEEK.index(day))
        if numbers:  # an empty list restricts nothing (cardinality *)
            kw["day_of_week"] = frozenset(numbers)
    reservation = obj.get("reservation")
    if reservation is not None:
        if not isinstance(reservation, str) or reservation not in RESERVATION_TYPES:  # a list is unhashable
            raise PricingInputError(_join(path, "reservation"), f"unknown ReservationRestrictionType {reservation!r}")
        kw["reservation"] = reservation
    return Restrictions(**kw)


def _component(value: Any, path: str) -> PriceComponent:
    obj = _obj(value, path)
    dim = _string(_req(obj, "type", path), _join(path, "type"))
    if dim not in TARIFF_DIMENSIONS:
        raise PricingInputError(_join(path, "type"), f"unknown TariffDimensionType {dim!r}")
    price = _number(_req(obj, "price", path), _join(path, "price"))
    step = _integer(_req(obj, "step_size", path), _join(path, "step_size"))
    vat_raw = obj.get("vat")
    vat = None if vat_raw is None else _number(vat_raw, _join(path, "vat"))
    return PriceComponent(type=dim, price=price, step_size=step, vat=vat)


def parse_tariff(value: Any, path: str = "") -> Tariff:
    """Parse one OCPI Tariff object (already JSON-decoded). ``last_updated`` is not needed for pricing."""
    obj = _obj(value, path or "tariff")
    elements_raw = _req(obj, "elements", path)
    if not isinstance(elements_raw, list) or not elements_raw:
        raise PricingInputError(_join(path, "elements"), "expected a non-empty list of TariffElements")
    elements = []
    for i, element_raw in enumerate(elements_raw):
        epath = f"{_join(path, 'elements')}[{i}]"
        element = _obj(element_raw, epath)
        comps_raw = _req(element, "price_components", epath)
        if not isinstance(comps_raw, list) or not comps_raw:
            raise PricingInputError(_join(epath, "price_components"), "expected a non-empty list")
        comps = tuple(_component(c, f"{epath}.price_components[{j}]") for j, c in enumerate(comps_raw))
        restrictions = _restrictions(element.get("restrictions"), _join(epath, "restrictions"))
        if restrictions.reservation is not None:
            for j, comp in enumerate(comps):
                if comp.type not in ("FLAT", "TIME"):
                    raise PricingInputError(
                        f"{epath}.price_components[{j}].type",
                        f"a reservation element may only have FLAT and TIME components, got {comp.type}",
                    )
        elements.append(TariffElement(comps, restrictions))
    tariff_type = obj.get("type")
    if tariff_type is not None and (not isinstance(tariff_type, str) or tariff_type not in TARIFF_TYPES):
        raise PricingInputError(_join(path, "type"), f"unknown TariffType {tariff_type!r}")
    return Tariff(
        currency=_currency(_req(obj, "currency", path), _join(path, "currency")),
        elements=tuple(elements),
        id=None if obj.get("id") is None else _string(obj["id"], _join(path, "id")),
        country_code=obj.get("country_code") if isinstance(obj.get("country_code"), str) else None,
        party_id=obj.get("party_id") if isinstance(obj.get("party_id"), str) else None,
        type=tariff_type,
        min_price=None if obj.get("min_price") is None else _price(obj["min_price"], _join(path, "min_price")),
        max_price=None if obj.get("max_price") is None else _price(obj["max_price"], _join(path, "max_price")),
        start_date_time=None
        if obj.get("start_date_time") is None
        else parse_datetime(obj["start_date_time"], _join(path, "start_date_time")),
        end_date_time=None
        if obj.get("end_date_time") is None
        else parse_datetime(obj["end_date_time"], _join(path, "end_date_time")),
    )


# ---------------------------------------------------------------------------------------------------- CDR

_QUANTITY_FIELDS = {
    "ENERGY": "energy",
    "TIME": "time",
    "PARKING_TIME": "parking_time",
    "RESERVATION_TIME": "reservation_time",
}
_MEASURE_FIELDS = {
    "MIN_CURRENT": "min_current",
    "MAX_CURRENT": "max_current",
    "MIN_POWER": "min_power",
    "MAX_POWER": "max_power",
}
# Session-only averages: used as a stand-in for both min and max when the CDR has no min/max value.
_AVERAGE_FIELDS = {"CURRENT": ("min_current", "max_current"), "POWER": ("min_power", "max_power")}


def _period(value: Any, path: str) -> ChargingPeriod:
    obj = _obj(value, path)
    start = parse_datetime(_req(obj, "start_date_time", path), _join(path, "start_date_time"))
    dims_raw = _req(obj, "dimensions", path)
    if not isinstance(dims_raw, list):
        raise PricingInputError(_join(path, "dimensions"), "expected a list of CdrDimensions")
    kw: dict[str, Any] = {}
    averages: dict[str, Decimal] = {}
    seen: set[str] = set()
    for i, dim_raw in enumerate(dims_raw):
        dpath = f"{path}.dimensions[{i}]"
        dim = _obj(dim_raw, dpath)
        dtype = _string(_req(dim, "type", dpath), _join(dpath, "type"))
        if dtype not in CDR_DIMENSIONS:
            raise PricingInputError(_join(dpath, "type"), f"unknown CdrDimensionType {dtype!r}")
        if dtype in seen:
            raise PricingInputError(_join(dpath, "type"), f"dimension {dtype} appears twice in one period")
        seen.add(dtype)
        if dtype in _QUANTITY_FIELDS:
            volume = _number(_req(dim, "volume", dpath), _join(dpath, "volume"), non_negative=False)
            if volume < 0:
                raise PricingInputError(
                    _join(dpath, "volume"),
                    f"negative {dtype} volume ({volume}) is not supported "
                    "(energy fed back to the grid cannot be priced)",
                )
            kw[_QUANTITY_FIELDS[dtype]] = volume
        elif dtype in _MEASURE_FIELDS:
            kw[_MEASURE_FIELDS[dtype]] = _number(_req(dim, "volume", dpath), _join(dpath, "volume"), non_negative=False)
        elif dtype in _AVERAGE_FIELDS:
            averages[dtype] = _number(_req(dim, "volume", dpath), _join(dpath, "volume"), non_negative=False)
        # ENERGY_EXPORT, ENERGY_IMPORT, STATE_OF_CHARGE do not influence the price.
    for dtype, average in averages.items():
        for name in _AVERAGE_FIELDS[dtype]:
            kw.setdefault(name, average)
    if kw.get("reservation_time", ZERO) > 0 and any(kw.get(k, ZERO) > 0 for k in ("energy", "time", "parking_time")):
        raise PricingInputError(
            _join(path, "dimensions"),
            "a period cannot carry RESERVATION_TIME together with ENERGY/TIME/PARKING_TIME; start a new period",
        )
    tariff_id = obj.get("tariff_id")
    if tariff_id is not None:
        tariff_id = _string(tariff_id, _join(path, "tariff_id"))
    return ChargingPeriod(start=start, tariff_id=tariff_id, **kw)


def parse_cdr(value: Any, path: str = "") -> CdrInput:
    """Parse the pricing-relevant part of a CDR: start/end, currency and charging_periods are needed."""
    obj = _obj(value, path or "cdr")
    start = parse_datetime(_req(obj, "start_date_time", path), _join(path, "start_date_time"))
    end = parse_datetime(_req(obj, "end_date_time", path), _join(path, "end_date_time"))
    if end < start:
        raise PricingInputError(_join(path, "end_date_time"), "is before start_date_time")
    periods_raw = _req(obj, "charging_periods", path)
    if not isinstance(periods_raw, list) or not periods_raw:
        raise PricingInputError(_join(path, "charging_periods"), "expected a non-empty list of ChargingPeriods")
    # Periods that do not fit the session (real CPOs send hour-aligned ones) are accepted: the engine counts them
    # from where they fit and says so (``periods.fit_periods``).
    periods = tuple(_period(p, f"{_join(path, 'charging_periods')}[{i}]") for i, p in enumerate(periods_raw))
    cdr_id = obj.get("id")
    return CdrInput(
        start=start,
        end=end,
        currency=_currency(_req(obj, "currency", path), _join(path, "currency")),
        periods=periods,
        id=cdr_id if isinstance(cdr_id, str) else None,
    )
