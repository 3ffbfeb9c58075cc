"""EU VAT identification numbers: normalisation and the checks we can do offline.

Belgian numbers carry a mod-97 check; Dutch ones a fixed shape (NL + 9 digits + B + 2 digits). For other
countries we check the shape only; VIES validation is an online call for later.
"""

from __future__ import annotations

import re

_SHAPES = {
    "BE": re.compile(r"^BE[01]\d{9}$"),
    "NL": re.compile(r"^NL\d{9}B\d{2}$"),
    "LU": re.compile(r"^LU\d{8}$"),
    "FR": re.compile(r"^FR[0-9A-HJ-NP-Z]{2}\d{9}$"),
    "DE": re.compile(r"^DE\d{9}$"),
}


class InvalidVatNumberError(ValueError):
    pass


def normalize_vat_number(raw: str) -> str:
    return re.sub(r"[\s.\-]", "", raw).upper()


def validate_vat_number(raw: str) -> str:
    """Return the normalised number or raise :class:`InvalidVatNumberError` with the reason."""
    number = normalize_vat_number(raw)
    country = number[:2]
    shape = _SHAPES.get(country)
    if shape is None:
        raise InvalidVatNumberError(f"VAT numbers from {country or '?'} are not supported")
    if not shape.match(number):
        raise InvalidVatNumberError(f"{number} does not have the shape of a {country} VAT number")
    if country == "BE":
        digits = number[2:]
        if 97 - int(digits[:8]) % 97 != int(digits[8:]):
            raise InvalidVatNumberError(f"{number} fails the Belgian check digits")
    return number
