"""The value rules of OCPI JSON, written once for everyone who reads it: exact numbers and DateTimes.

Pure (standard library only), so both ``app.pricing`` (pure, the bottom layer) and ``app.roaming`` can import it.
Who owns which rule:

- here: JSON text → Python with every non-integer number as ``Decimal``; the exact ``Decimal`` of a JSON
  number; an OCPI DateTime → an aware UTC ``datetime`` (no designator means UTC, offsets are converted).
  Failures are plain ``ValueError``\\ s without a field path: the caller knows the path and words the message.
- ``app.roaming.ocpi.reader``: how roaming reads *fields* (paths, required, ids as strings, enums, bounds) and
  refuses them (OCPI 2001 naming the field). Everything roaming receives goes through it.
- ``app.pricing.parse``: pricing's reading of Tariffs and CDRs (its strict RFC 3339 form, ``PricingInputError``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

# How deeply JSON may nest. The deepest OCPI 2.2.1 object (a CDR's tariffs[].elements[].restrictions.day_of_week[])
# is 6 levels, 8 inside a response envelope; 32 leaves room for partners' extensions and stays far below the
# recursion limits of json and of every recursive walk over the result.
MAX_JSON_DEPTH = 32

# A JSON string (escapes included: the unrolled form, fast on long strings) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class NotANumberError(ValueError):
    """A JSON value that is not a number we can read exactly (a bool, a list, text that is no number...)."""


class JsonTooDeepError(ValueError):
    """JSON nested deeper than allowed (refused before parsing, so no parser or walker ever recurses on it)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (RFC 8259)")


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests arrays and objects more than ``limit`` levels deep: a cheap scan that skips
    strings, exact for valid JSON (for invalid JSON the parser says what is wrong)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # fewer brackets than levels: no scan (most objects)
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        piece = match.group()
        if piece in "[{":
            depth += 1
            if depth > limit:
                return True
        elif piece in "]}":
            depth -= 1
    return False


def load_json(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON with every non-integer number as ``Decimal``: ``4.40`` never becomes a float.

    Strictly RFC 8259: ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's json accepts) are refused, and so
    is nesting deeper than ``max_depth`` (checked before parsing: 1,000 levels would exhaust the recursion
    of the parser or of whoever walks the result). Bytes must be UTF-8 (or UTF-16/32 as RFC 8259 detects).
    Raises ``ValueError`` (``json.JSONDecodeError``, :class:`JsonTooDeepError`, ``UnicodeDecodeError``...).
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode(json.detect_encoding(text))
    if nests_deeper_than(text, max_depth):
        raise JsonTooDeepError(f"nested deeper than {max_depth} levels")
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def exact_decimal(value: Any, *, numeric_text: bool = False) -> Decimal:
    """The exact ``Decimal`` of a JSON number: an int, a ``Decimal`` (from :func:`load_json`) or a float.

    A float only reaches us from a caller that decoded JSON without ``parse_float=Decimal``; its ``repr`` is the
    shortest text that round-trips, so ``4.4`` stays ``4.4`` and not ``4.4000000000000003552``. With
    ``numeric_text`` a numeric string is read too (OCPI GeoLocation values are strings; some feeds quote
    amounts). ``bool`` is refused although Python counts it as an int. The result may be NaN or infinite:
    whether that is acceptable, and how to say so, is the caller's rule.
    """
    if isinstance(value, bool):
        raise NotANumberError(f"not a number: {value!r}")
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if numeric_text and isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise NotANumberError(f"not a number: {value!r}") from None
    raise NotANumberError(f"not a number: {value!r}")


def utc_datetime(text: str) -> dt.datetime:
    """ISO 8601 text → aware UTC ``datetime``. Without a zone designator the time is UTC (OCPI: all times are
    UTC); an offset is honoured and converted. Raises ``ValueError`` (the message of ``fromisoformat``)."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is in year 10000 in UTC
        raise ValueError(f"{text!r} is out of range in UTC") from None


def parse_ocpi_datetime(value: Any) -> dt.datetime:
    """An OCPI DateTime as partners really send it, always UTC out.

    Tolerant in: surrounding blanks, a lower-case ``z``, a date without time, any offset, any number of
    fraction digits. Raises ``ValueError`` for anything else (also for a value that is not a string).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty DateTime")
    text = value.strip()
    if text.endswith(("Z", "z")):
        # fromisoformat reads "Z" only after a time and never "z"; "+00:00" it reads everywhere.
        text = text[:-1] + "+00:00"
    return utc_datetime(text)
