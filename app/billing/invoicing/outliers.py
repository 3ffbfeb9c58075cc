"""The outlier guard: sessions beyond plausible limits are held for finance instead of billed.

Limits come from ``OUTLIER_LIMITS`` in the config (missing keys fall back to :data:`DEFAULT_LIMITS`):

- ``max_kwh``, ``max_average_kw``, ``max_hours``: physically implausible sessions (a meter or clock error);
- ``max_incl_vat``: a price no single charging session should reach;
- ``max_estimate_deviation_pct`` with the floor ``min_estimate_deviation`` (currency units, incl. VAT): the billed
  price is far from the session's estimate. The estimate (``SessionCharge.estimate_incl_vat``, stored when the
  session is rated) is the price promise: this session's own kWh and duration priced at the tariff in force at
  its connector when it started, with our fees and VAT. A CDR priced from its own tariff or ``total_cost`` (no
  frozen tariff) that lands far from it is a CPO data error or an unannounced price change; the driver must not
  get it on the invoice unchecked. The absolute floor keeps cheap sessions (0.80 billed on a 0.40 estimate is
  +100 % but harmless) from tripping it: both the percentage *and* the floor must be exceeded.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, func, or_

from app.charging.models import Cdr
from app.failures import failure_reason
from app.rating.models import SessionCharge

DEFAULT_LIMITS = {
    "max_kwh": "150",
    "max_average_kw": "350",
    "max_incl_vat": "150",
    "max_hours": "48",
    "max_estimate_deviation_pct": "50",
    "min_estimate_deviation": "10",
}


def limits() -> dict[str, Decimal]:
    configured = current_app.config.get("OUTLIER_LIMITS") or {}
    return {key: Decimal(str(configured.get(key, default))) for key, default in DEFAULT_LIMITS.items()}


def estimate_deviation(billed: Decimal, estimate: Decimal | None, bounds: dict[str, Decimal]) -> Decimal | None:
    """How far (in % of the estimate) the billed price is from its estimate when that is beyond both the
    percentage and the absolute floor; None when it is close enough or there is no estimate."""
    if estimate is None:
        return None
    difference = abs(billed - estimate)
    if difference <= bounds["min_estimate_deviation"]:
        return None
    if difference * 100 <= bounds["max_estimate_deviation_pct"] * abs(estimate):
        return None
    return difference * 100 / abs(estimate) if estimate else Decimal("Infinity")


def outlier_reasons(charge: Any, cdr: Any, bounds: dict[str, Decimal] | None = None) -> list[str]:
    """Why a session should be held (empty list: bill it). Credits are never held.

    ``charge`` and ``cdr`` are a :class:`SessionCharge` and its :class:`Cdr`, or one row carrying the same
    attribute names (``kwh``, ``driver_incl_vat``, ``estimate_incl_vat``, ``total_time``): the invoice run reads
    plain rows for speed.

    A session whose figures cannot even be compared (a stored ``NaN``, a number beyond the decimal context) is
    held too, with that as its reason: finance looks at it instead of the run stopping for everyone."""
    bounds = bounds or limits()
    try:
        return _reasons(charge, cdr, bounds)
    except (ArithmeticError, ValueError, TypeError) as error:  # decimal.InvalidOperation is an ArithmeticError
        return [f"figures that cannot be checked against the limits: {failure_reason(error)}"]


def _reasons(charge: Any, cdr: Any, bounds: dict[str, Decimal]) -> list[str]:
    if charge.driver_incl_vat < 0:
        return []
    reasons = []
    hours = cdr.total_time  # the CDR's own duration in hours (charging + parking), as the CPO measured it
    if charge.kwh > bounds["max_kwh"]:
        reasons.append(f"energy {charge.kwh} kWh over {bounds['max_kwh']} kWh")
    if hours > 0 and charge.kwh / hours > bounds["max_average_kw"]:
        reasons.append(f"average power {charge.kwh / hours:.0f} kW over {bounds['max_average_kw']} kW")
    if hours > bounds["max_hours"]:
        reasons.append(f"duration {hours:.1f} h over {bounds['max_hours']} h")
    if charge.driver_incl_vat > bounds["max_incl_vat"]:
        reasons.append(f"price {charge.driver_incl_vat} over {bounds['max_incl_vat']}")
    deviation = estimate_deviation(charge.driver_incl_vat, charge.estimate_incl_vat, bounds)
    if deviation is not None:
        off = "far" if deviation.is_infinite() else f"{deviation:.0f} %"
        reasons.append(
            f"price {charge.driver_incl_vat} is {off} from its estimate {charge.estimate_incl_vat} "
            f"(limit {bounds['max_estimate_deviation_pct']} % and {bounds['min_estimate_deviation']})"
        )
    return reasons


def outlier_filter(bounds: dict[str, Decimal]) -> ColumnElement[bool]:
    """The same limits as :func:`outlier_reasons`, as SQL, to find candidates among millions of sessions."""
    difference = func.abs(SessionCharge.driver_incl_vat - SessionCharge.estimate_incl_vat)
    return or_(
        SessionCharge.kwh > bounds["max_kwh"],
        SessionCharge.driver_incl_vat > bounds["max_incl_vat"],
        Cdr.total_time > bounds["max_hours"],
        (Cdr.total_time > 0) & (SessionCharge.kwh > Cdr.total_time * bounds["max_average_kw"]),
        SessionCharge.estimate_incl_vat.is_not(None)
        & (difference > bounds["min_estimate_deviation"])
        & (difference * 100 > func.abs(SessionCharge.estimate_incl_vat) * bounds["max_estimate_deviation_pct"]),
    )
