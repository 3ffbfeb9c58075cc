"""Postal codes of the countries we hold most contracts in, checked and written the way the post writes them.

Belgium: four digits, 1000 to 9999. The Netherlands: four digits not starting with 0, then two letters, written
"1234 AB" (the space is optional when typed, the letters may be lower case); the post never gives out the letter
pairs SA, SD and SS, so a code with them is a typo. Other countries keep what the driver typed, trimmed.
"""

from __future__ import annotations

import re

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

_BELGIAN = re.compile(r"^[1-9]\d{3}$")
_DUTCH = re.compile(r"^([1-9]\d{3}) ?([A-Z]{2})$")
_DUTCH_UNUSED_LETTERS = frozenset({"SA", "SD", "SS"})


class InvalidPostcodeError(ValueError):
    """The postal code does not exist in the country; ``args[0]`` says why, in the page's language."""

    def __init__(self, message: str | LazyString) -> None:
        super().__init__(message)


def normalise_postcode(country: str, raw: str) -> str:
    """``raw`` checked for ``country`` and written in its standard form; raises :class:`InvalidPostcodeError`."""
    # Any run of spaces (a non-breaking one pasted from a web page too) counts as one.
    text = " ".join(raw.split()).upper()
    if country == "BE":
        if not _BELGIAN.match(text):
            raise InvalidPostcodeError(_l("A Belgian postal code has four digits, from 1000 to 9999."))
        return text
    if country == "NL":
        match = _DUTCH.match(text)
        if match is None:
            raise InvalidPostcodeError(
                _l("A Dutch postal code has four digits (not starting with 0) and two letters, like 1234 AB.")
            )
        digits, letters = match.groups()
        if letters in _DUTCH_UNUSED_LETTERS:
            raise InvalidPostcodeError(
                _l("Dutch postal codes never end in %(letters)s: check the letters.", letters=letters)
            )
        return f"{digits} {letters}"
    return text
