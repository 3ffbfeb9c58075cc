"""Price estimate shown to the driver before charging.

Two parts, kept separate because EU AFIR asks for the split: the CPO's price components as published (the
element active at the start, per dimension) and our fees. Then an example total for a given energy and
duration, computed by building a synthetic session (one charging period at constant power) and pricing it with
the real engine and the real markup: the estimate and the invoice cannot disagree by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from .compiled import CompiledTariff, compile_tariff
from .engine import active_components, price_session
from .errors import PricingInputError
from .markup import DriverPrice, PlanTerms, driver_price, session_fee_due
from .model import ENERGY, FLAT, PARKING_TIME, TIME, CdrInput, ChargingPeriod, Price, Tariff
from .result import PriceBreakdown

_ZERO = Decimal(0)
_US_PER_HOUR = Decimal(3_600_000_000)


@dataclass(frozen=True, slots=True)
class PublishedComponent:
    """A CPO price component as published: price per unit excl. VAT (kWh, hour, or per session for FLAT)."""

    dimension: str
    element_index: int
    price: Decimal
    vat: Decimal | None
    step_size: int


@dataclass(frozen=True, slots=True)
class OurFees:
    markup_percent: Decimal
    markup_per_kwh: Decimal
    session_fee: Decimal  # what this session would pay, after the monthly cap
    monthly_fee: Decimal


@dataclass(frozen=True, slots=True)
class Estimate:
    currency: str
    cpo_components: tuple[PublishedComponent, ...]
    cpo_min_price: Price | None
    cpo_max_price: Price | None
    our_fees: OurFees
    example_kwh: Decimal
    example_duration: timedelta
    example_cpo: PriceBreakdown
    example_driver: DriverPrice


def estimate(
    tariff: Tariff | CompiledTariff,
    plan_terms: PlanTerms,
    country: str,
    kwh: Decimal,
    duration: timedelta,
    start: datetime,
    timezone: str | tzinfo | None,
    max_power_kw: Decimal | None = None,
    *,
    session_fees_this_month: Decimal = _ZERO,
    vat_table: Mapping[str, Decimal] | None = None,
) -> Estimate:
    """Published components + our fees + an example total for ``kwh`` charged in ``duration`` from ``start``.

    The synthetic period charges at constant power ``kwh / duration``; power restrictions are evaluated at
    ``max_power_kw`` when given (the power the charger/car will draw), else at that average. ``kwh`` must be
    reachable: ``kwh <= max_power_kw × duration``.
    """
    ct = tariff if isinstance(tariff, CompiledTariff) else compile_tariff(tariff)
    if start.tzinfo is None or start.utcoffset() is None:
        raise PricingInputError("start", "must be a timezone-aware datetime")
    if not isinstance(kwh, Decimal) or not kwh.is_finite() or kwh < 0:
        raise PricingInputError("kwh", f"must be a non-negative Decimal, got {kwh!r}")
    if duration <= timedelta(0):
        raise PricingInputError("duration", "must be positive")
    hours = Decimal(duration // timedelta(microseconds=1)) / _US_PER_HOUR
    average = kwh / hours
    if max_power_kw is not None and average > max_power_kw:
        raise PricingInputError("kwh", f"{kwh} kWh cannot be charged in {duration} at {max_power_kw} kW")
    power = average if max_power_kw is None else max_power_kw
    active = active_components(ct, start, timezone, power)
    published = tuple(
        PublishedComponent(dim, c.element_index, c.price, c.vat, c.step_size)
        for dim in (FLAT, ENERGY, TIME, PARKING_TIME)
        if (c := active.get(dim)) is not None
    )
    period = ChargingPeriod(start=start, energy=kwh, time=hours, min_power=power, max_power=power)
    cdr = CdrInput(start=start, end=start + duration, currency=ct.currency, periods=(period,))
    cpo = price_session(ct, cdr, timezone)
    driver = driver_price(
        plan_terms,
        cpo.total_excl_vat,
        kwh,
        session_fees_this_month,
        country,
        vat_table,
        currency=cpo.currency,
    )
    fees = OurFees(
        plan_terms.markup_percent,
        plan_terms.markup_per_kwh,
        session_fee_due(plan_terms, session_fees_this_month),
        plan_terms.monthly_fee,
    )
    return Estimate(
        currency=ct.currency,
        cpo_components=published,
        cpo_min_price=ct.min_price,
        cpo_max_price=ct.max_price,
        our_fees=fees,
        example_kwh=kwh,
        example_duration=duration,
        example_cpo=cpo,
        example_driver=driver,
    )
