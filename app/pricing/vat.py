"""VAT rates by country, for *our* invoice to the driver.

The driver pays VAT at the rate of the country where charging took place (place of supply for EV charging
as a supply of goods/services at the charge point). The table is passed in by the caller (billing reads it
from configuration); the default covers where we operate today. An unknown country is an error, never 0 %:
silently billing without VAT would be a tax error that surfaces months later.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

from app.countries import alpha2

from .errors import UnknownCountryError

DEFAULT_VAT_RATES: Mapping[str, Decimal] = MappingProxyType({"BE": Decimal("21"), "NL": Decimal("21")})


def vat_rate(country: str, table: Mapping[str, Decimal] | None = None) -> Decimal:
    """VAT percentage (e.g. ``Decimal("21")``) for a country; raises :class:`UnknownCountryError`."""
    rates = DEFAULT_VAT_RATES if table is None else table
    code = alpha2(country)  # CDR locations carry alpha-3 codes, our tables alpha-2: both are accepted
    for key, rate in rates.items():
        if alpha2(key) == code:
            return Decimal(rate)
    raise UnknownCountryError(country)
