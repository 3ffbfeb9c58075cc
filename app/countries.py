"""Country codes: the one ISO 3166-1 alpha-3 → alpha-2 table.

OCPI Locations and CDR locations carry alpha-3 (``"BEL"``); VAT tables, accounts and tariffs use alpha-2
(``"BE"``). Pure (no Flask, no database), so pricing (VAT), rating and billing all read the same table.
It covers the EEA (the EU plus Iceland, Liechtenstein and Norway) and Switzerland and the UK: a country
missing here would reach a VAT table as an unknown alpha-3 code and stop the rating of its sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

ALPHA3_TO_ALPHA2: Mapping[str, str] = MappingProxyType(
    {
        # EU
        "AUT": "AT",
        "BEL": "BE",
        "BGR": "BG",
        "CYP": "CY",
        "CZE": "CZ",
        "DEU": "DE",
        "DNK": "DK",
        "ESP": "ES",
        "EST": "EE",
        "FIN": "FI",
        "FRA": "FR",
        "GRC": "GR",
        "HRV": "HR",
        "HUN": "HU",
        "IRL": "IE",
        "ITA": "IT",
        "LTU": "LT",
        "LUX": "LU",
        "LVA": "LV",
        "MLT": "MT",
        "NLD": "NL",
        "POL": "PL",
        "PRT": "PT",
        "ROU": "RO",
        "SVK": "SK",
        "SVN": "SI",
        "SWE": "SE",
        # the rest of the EEA
        "ISL": "IS",
        "LIE": "LI",
        "NOR": "NO",
        # neighbours we roam in
        "CHE": "CH",
        "GBR": "GB",
    }
)


def alpha2(country: str) -> str:
    """Upper-case alpha-2 code for an alpha-2 or a known alpha-3 code; an unknown code comes back upper-cased
    (the caller's table then says it does not know it)."""
    code = country.strip().upper()
    if len(code) == 2:
        return code
    return ALPHA3_TO_ALPHA2.get(code, code)
