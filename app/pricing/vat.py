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

from .errors import UnknownCountryError

DEFAULT_VAT_RATES: Mapping[str, Decimal] = MappingProxyType({"BE": Decimal("21"), "NL": Decimal("21")})

# CDR locations carry ISO 3166-1 alpha-3 codes, tariffs and our tables alpha-2: accept both (EU/EEA + UK/CH).
_ALPHA3_TO_ALPHA2 = {
    "AUT": "AT",
    "BEL": "BE",
    "BGR": "BG",
    "HRV": "HR",
    "CYP": "CY",
    "CZE": "CZ",
    "DNK": "DK",
    "EST": "EE",
    "FIN": "FI",
    "FRA": "FR",
    "DEU": "DE",
    "GRC": "GR",
    "HUN": "HU",
    "IRL": "IE",
    "ITA": "IT",
    "LVA": "LV",
    "LTU": "LT",
    "LUX": "LU",
    "MLT": "MT",
    "NLD": "NL",
    "POL": "PL",
    "PRT": "PT",
    "ROU": "RO",
    "SVK": "SK",
    "SVN": "SI",
    "ESP": "ES",
    "SWE": "SE",
    "NOR": "NO",
    "ISL": "IS",
    "LIE": "LI",
    "CHE": "CH",
    "GBR": "GB",
}


def normalise_country(country: str) -> str:
    """Upper-case ISO alpha-2 code for an alpha-2 or (known) alpha-3 code."""
    code = country.strip().upper()
    return _ALPHA3_TO_ALPHA2.get(code, code)


def vat_rate(country: str, table: Mapping[str, Decimal] | None = None) -> Decimal:
    """VAT percentage (e.g. ``Decimal("21")``) for a country; raises :class:`UnknownCountryError`."""
    rates = DEFAULT_VAT_RATES if table is None else table
    code = normalise_country(country)
    for key, rate in rates.items():
        if normalise_country(key) == code:
            return Decimal(rate)
    raise UnknownCountryError(country)
