"""Country codes: OCPI locations carry ISO 3166-1 alpha-3, VAT tables and accounts use alpha-2."""

from __future__ import annotations

ALPHA3_TO_ALPHA2 = {
    "AUT": "AT", "BEL": "BE", "BGR": "BG", "CHE": "CH", "CZE": "CZ", "DEU": "DE", "DNK": "DK", "ESP": "ES",
    "EST": "EE", "FIN": "FI", "FRA": "FR", "GBR": "GB", "GRC": "GR", "HRV": "HR", "HUN": "HU", "IRL": "IE",
    "ITA": "IT", "LTU": "LT", "LUX": "LU", "LVA": "LV", "NLD": "NL", "NOR": "NO", "POL": "PL", "PRT": "PT",
    "ROU": "RO", "SVK": "SK", "SVN": "SI", "SWE": "SE",
}

# Where a location carries no time_zone, the country's (one zone per country for the ones we roam in).
DEFAULT_ZONES = {
    "AT": "Europe/Vienna", "BE": "Europe/Brussels", "CH": "Europe/Zurich", "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen", "FR": "Europe/Paris", "IT": "Europe/Rome", "LU": "Europe/Luxembourg",
    "NL": "Europe/Amsterdam", "NO": "Europe/Oslo", "PL": "Europe/Warsaw", "SE": "Europe/Stockholm",
}


def alpha2(country: str) -> str:
    code = country.strip().upper()
    if len(code) == 2:
        return code
    return ALPHA3_TO_ALPHA2.get(code, code)
