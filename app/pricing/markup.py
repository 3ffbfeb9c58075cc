"""Our price on top of the CPO cost: plan markup, session fee (with a monthly cap) and VAT.

Pure functions over Decimals. Rounding (ROUND_HALF_UP, 4 decimals) happens at exactly these points, so the
figures add up: the CPO cost, each of our fees, and the VAT amount are rounded to 4 decimals; the excl. VAT
amount is the sum of the rounded parts and incl. VAT = excl. + VAT. Rounding to cents for the invoice is done
by billing (invoice total = sum of rounded lines), not here.

The CPO's own VAT is irrelevant for the driver: we buy the session excl. VAT and resell it, so VAT is charged
once, on our whole price, at the rate of the country where charging took place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from .errors import CurrencyMismatchError, PricingInputError
from .result import q4
from .vat import vat_rate

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanTerms:
    """A driver's plan. ``markup_percent`` is a percentage (``Decimal("10")`` = 10 %); amounts are excl. VAT.

    ``session_fee_cap_per_month``: the month's session fees never exceed it (``None`` = no cap).
    ``monthly_fee`` is billed by the invoice run, not per session; it is carried here so a plan is one value.
    """

    monthly_fee: Decimal
    markup_percent: Decimal
    markup_per_kwh: Decimal
    session_fee: Decimal
    currency: str
    session_fee_cap_per_month: Decimal | None = None

    def __post_init__(self) -> None:
        for name in (
            "monthly_fee",
            "markup_percent",
            "markup_per_kwh",
            "session_fee",
            "session_fee_cap_per_month",
        ):
            value = getattr(self, name)
            if value is None and name == "session_fee_cap_per_month":
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise PricingInputError(name, f"must be a non-negative Decimal, got {value!r}")


@dataclass(frozen=True, slots=True)
class DriverPrice:
    """What the driver pays for one session, and how it is built. ``margin`` is the sum of our fees."""

    currency: str
    cpo_cost: Decimal
    percent_markup: Decimal
    kwh_markup: Decimal
    session_fee: Decimal
    margin: Decimal
    excl_vat: Decimal
    vat_rate: Decimal
    vat: Decimal
    incl_vat: Decimal


def session_fee_due(terms: PlanTerms, session_fees_this_month: Decimal) -> Decimal:
    """The session fee for this session, reduced so the month's total never exceeds the cap."""
    if terms.session_fee_cap_per_month is None:
        return terms.session_fee
    room = terms.session_fee_cap_per_month - session_fees_this_month
    return max(_ZERO, min(terms.session_fee, room))


def driver_price(
    terms: PlanTerms,
    cpo_cost_excl_vat: Decimal,
    kwh: Decimal,
    session_fees_this_month: Decimal,
    country: str,
    vat_table: Mapping[str, Decimal] | None = None,
    currency: str | None = None,
) -> DriverPrice:
    """Driver price = CPO cost (excl. VAT) + markup_percent of it + markup_per_kwh × kWh + session fee, + VAT.

    ``currency`` is the CPO cost's currency; when given it must equal the plan's (we never convert silently).
    Raises :class:`~app.pricing.errors.UnknownCountryError` for a country without a VAT rate.
    """
    if currency is not None and currency.upper() != terms.currency.upper():
        raise CurrencyMismatchError("currency", f"CPO cost in {currency} but plan in {terms.currency}")
    for name, value in (
        ("cpo_cost_excl_vat", cpo_cost_excl_vat),
        ("kwh", kwh),
        ("session_fees_this_month", session_fees_this_month),
    ):
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise PricingInputError(name, f"must be a non-negative Decimal, got {value!r}")
    rate = vat_rate(country, vat_table)
    cpo = q4(cpo_cost_excl_vat)
    percent = q4(cpo_cost_excl_vat * terms.markup_percent / _HUNDRED)
    per_kwh = q4(kwh * terms.markup_per_kwh)
    fee = q4(session_fee_due(terms, session_fees_this_month))
    margin = percent + per_kwh + fee
    excl = cpo + margin
    vat = q4(excl * rate / _HUNDRED)
    return DriverPrice(
        currency=terms.currency,
        cpo_cost=cpo,
        percent_markup=percent,
        kwh_markup=per_kwh,
        session_fee=fee,
        margin=margin,
        excl_vat=excl,
        vat_rate=rate,
        vat=vat,
        incl_vat=excl + vat,
    )
