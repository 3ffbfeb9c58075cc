"""EU VAT identification numbers: normalisation and the checks we can do offline.

Belgian numbers carry a mod-97 check; Dutch ones a fixed shape (NL + 9 digits + B + 2 digits). For other
countries we check the shape only; VIES validation is an online call for later.
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

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
        raise InvalidVatNumberError(_l("VAT numbers from %(country)s are not supported.", country=country or "?"))
    if not shape.match(number):
        raise InvalidVatNumberError(
            _l("%(number)s does not have the shape of a %(country)s VAT number.", number=number, country=country)
        )
    if country == "BE":
        digits = number[2:]
        if 97 - int(digits[:8]) % 97 != int(digits[8:]):
            raise InvalidVatNumberError(_l("%(number)s fails the Belgian check digits.", number=number))
    return number
