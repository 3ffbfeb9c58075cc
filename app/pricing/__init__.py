"""Pure pricing for the e-MSP: OCPI 2.2.1 tariffs → CPO cost; plan terms → driver price; estimates.

No Flask, no database: functions take parsed OCPI objects and plans and return Decimals, so that the OCPI
handlers, billing, the API and the CLI all compute the same numbers.

Typical use::

    tariff = parse_tariff(loads(tariff_json))
    cdr = parse_cdr(loads(cdr_json))
    breakdown = price_session(tariff, cdr, "Europe/Brussels")
    price = driver_price(terms, breakdown.total_excl_vat, breakdown.total_energy, fees_so_far, "BE")
"""

from .compiled import CompiledTariff, compile_tariff
from .engine import active_components, price_session
from .errors import (
    CurrencyMismatchError,
    PricingError,
    PricingInputError,
    TariffNotValidError,
    UnknownCountryError,
)
from .estimate import Estimate, PublishedComponent, estimate
from .markup import DriverPrice, PlanTerms, driver_price
from .model import CdrInput, ChargingPeriod, Price, PriceComponent, Restrictions, Tariff, TariffElement
from .parse import loads, parse_cdr, parse_tariff, unwrap_envelope
from .periods import PeriodNote, fit_periods
from .result import CostLine, DimensionCost, PriceBreakdown
from .vat import DEFAULT_VAT_RATES, vat_rate

__all__ = [
    "DEFAULT_VAT_RATES",
    "CdrInput",
    "ChargingPeriod",
    "CompiledTariff",
    "CostLine",
    "CurrencyMismatchError",
    "DimensionCost",
    "DriverPrice",
    "Estimate",
    "PeriodNote",
    "PlanTerms",
    "Price",
    "PriceBreakdown",
    "PriceComponent",
    "PricingError",
    "PricingInputError",
    "PublishedComponent",
    "Restrictions",
    "Tariff",
    "TariffElement",
    "TariffNotValidError",
    "UnknownCountryError",
    "active_components",
    "compile_tariff",
    "driver_price",
    "estimate",
    "fit_periods",
    "loads",
    "parse_cdr",
    "parse_tariff",
    "price_session",
    "unwrap_envelope",
    "vat_rate",
]
