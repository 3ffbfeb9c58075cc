"""Countries as rating needs them: the time zone of a location that does not say its own.

The alpha-3 → alpha-2 table is ``app.countries`` (one table for pricing, rating and billing).
"""

from __future__ import annotations

# Where a location carries no time_zone, the country's (one zone per country for the ones we roam in).
DEFAULT_ZONES = {
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "CH": "Europe/Zurich",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "FR": "Europe/Paris",
    "IT": "Europe/Rome",
    "LU": "Europe/Luxembourg",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "PL": "Europe/Warsaw",
    "SE": "Europe/Stockholm",
}
