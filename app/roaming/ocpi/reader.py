"""Reading OCPI objects sent by partners: the one reader for everything roaming receives.

Tolerant in: unknown fields are kept, numbers may arrive as JSON numbers or strings, ids as numbers, timestamps
with offsets or with a space for the ``T`` (:func:`partner_datetime`). Strict about what we need: a missing or
malformed field raises :class:`InvalidObjectError` (OCPI 2001, HTTP 400) naming the field by its JSON path,
before anything is stored.

Who owns which rule:

- ``app.ocpi_values`` (pure, shared with ``app.pricing``): the value rules — JSON with exact ``Decimal``\\ s,
  the exact ``Decimal`` of a JSON number, an OCPI DateTime → UTC.
- this module: the field rules of roaming — where a field is (its path), what "required" means, ids as
  strings, enums, length bounds — and the one error, :class:`InvalidObjectError`.
- ``receive/location_validation.py``, ``receive/tariffs.py``, ``receive/sessions.py``, ``receive/cdrs.py``,
  ``send/commands.py``: which fields each object has, with which bounds. They read only through this module.
- ``app.pricing.parse``: pricing's own reading of Tariffs and CDRs, on the same value rules.

Two ways of reading, on the same rules:

- the path functions (``require_str(cdr, "cdr_token.uid", 36)``) stop at the first bad field and say
  "missing required field cdr_token.uid" — Sessions, CDRs, CommandResults;
- :class:`FieldReader` walks one JSON object and collects every bad field ("evses[0].uid is required;
  evses[0].status must be one of ...") so a CPO can fix a whole Location at once — Locations, Tariffs.

Intake rules (DESIGN "Intake": bounded before stored), the same for every object whichever door it came
through (HTTP, pull, import), each refused with 2001 naming the field:

- JSON: RFC 8259 only (no ``NaN``/``Infinity``), nested at most ``MAX_JSON_DEPTH`` levels, request bodies at
  most ``OCPI_MAX_BODY_BYTES`` (413 before reading; see ``app/roaming/door/v221/blueprint.py``).
- the whole tree, not only the fields we read (``body.check_tree``; it is kept in the ``data`` columns and read
  back by the invoice run): no control character in any string or key at any depth — C0 (U+0000–U+001F) except
  tab, CR and LF (types.asciidoc forbids those too, but real feeds send them and they are harmless), DEL and C1
  (U+007F–U+009F) — and no lone surrogate (not storable as UTF-8); ids and query parameters refuse all of them;
  every number finite and within ``±NUMBER_LIMIT``; strings within the spec's length where
  the object's *shape* declares it (``receive/*``: every string field of the spec's object tables).
- numbers we read: within :class:`Bounds` (physics and the column, see ``receive/limits.py``), rounded
  ``ROUND_HALF_UP`` to the column's scale where ``places`` is given (the raw value stays in ``data``).
- DateTimes we read: between ``EARLIEST`` and ``LATEST`` (a year-9999 ``last_updated`` would freeze an object
  against every later update; 1970 is a zero timestamp, not a session). A tariff's own validity window is
  pricing's to read and may use a far-future end as "forever".
- enums: a value outside the spec's list is refused for every enum we *use* (EVSE status, power type,
  session status, auth method, token type, CDR dimension type, the tariff enums pricing applies, command
  result): acting on a value we do not understand could misprice or misroute. Enums we only *keep* (parking
  type, facilities, capabilities, connector standard and format, image category, the CDR's connector fields
  that the spec says may hold "any value") are accepted as sent, bounded like any string, so a partner on a
  newer minor version is not refused for a value we never read.
- URL ids (``body.check_url_id``, wired in ``app/roaming/door/v221/blueprint.py``) and query parameters
  (``responses.py``): no control character, the spec's length, integers within what the database compares;
  2001 naming them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeAlias

from app.ocpi_values import (
    NotANumberError,
    exact_decimal,
    parse_ocpi_datetime,
)
from app.roaming.ocpi.errors import INVALID_OR_MISSING_PARAMETERS, OcpiError

_MISSING = object()

# The DateTimes we read lie in this window: OCPI (2014) and public EV roaming postdate 2000, and nothing we bill
# can happen after 2100; outside it a value is a zero or sentinel timestamp, not an event.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

# The forms of an OCPI DateTime partners really write: RFC 3339 (``2026-11-02T12:00:00Z``) and its variants seen
# in the field: a space or a lower-case t for the ``T`` (``2026-11-02 12:00:00Z``, SQL's way), no zone (UTC, as
# OCPI says), ``z``, an offset with or without colon, any fraction of a second, no seconds, a date alone. Python's
# ``fromisoformat`` alone would also read week dates (``2026-W45-1``), the basic form (``20261102T120000``) and
# any character between date and time: those are no OCPI timestamps, and stay refused.
_DATETIME_FORM = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)


class InvalidObjectError(OcpiError, ValueError):
    """An OCPI object we cannot accept. It is an ``OcpiError`` (the HTTP door answers 400/2001) and a
    ``ValueError`` (batch callers such as the pull client and the importers can catch it without knowing OCPI).
    ``path`` names the first offending field when the error was collected by a :class:`FieldReader` or raised
    with one."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(INVALID_OR_MISSING_PARAMETERS, message, http_status=400)
        self.path = path


@dataclass(frozen=True)
class Bounds:
    """The range of a number: ``minimum <= value <= maximum``. ``places``: the scale of the column it goes to;
    the value is rounded ``ROUND_HALF_UP`` to it (an explicit rounding point, the same on every database).
    ``integer``: fractions are refused."""

    minimum: Decimal | int
    maximum: Decimal | int
    places: int | None = None
    integer: bool = False

    def check(self, value: Any, path: str) -> Decimal:
        """The number at ``path`` within these bounds (``InvalidObjectError`` naming it otherwise)."""
        number = to_decimal(value, path)
        if self.integer and number != number.to_integral_value():
            raise InvalidObjectError(f"field {path} must be an integer", path)
        # Compared before and after rounding: 1E+999999999 must not reach quantize, 9999.99995 may round over.
        if self.minimum <= number <= self.maximum and self.places is not None:
            number = number.quantize(Decimal(1).scaleb(-self.places), rounding=ROUND_HALF_UP)
        if not self.minimum <= number <= self.maximum:
            raise InvalidObjectError(f"field {path} must be between {self.minimum} and {self.maximum}", path)
        return number


# The spec's limits of an object's fields, for :func:`check_tree`: a field name maps to the maximum length of a
# string, to the Bounds of a number, or to the shape of a nested object. A list field's limit applies to each
# item (``"tariff_ids": 36``, ``"evses": EVSE_SHAPE``). Fields a shape does not name are still checked for
# control characters and the generic number limit.
Shape: TypeAlias = "Mapping[str, int | Bounds | Shape]"


def join_path(path: str, name: str) -> str:
    """``join_path("evses[0]", "uid")`` → ``"evses[0].uid"``; at the top level the name alone."""
    return f"{path}.{name}" if path else name


def id_text(value: Any) -> str | None:
    """A string field as text, tolerating a numeric id (``"id": 12``); None for anything else (bool included)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# ------------------------------------------------------------------------------- path functions (first error)


def get_path(obj: Any, path: str, default: Any = _MISSING) -> Any:
    """``get_path(cdr, "cdr_location.coordinates.latitude")``; missing → ``default`` (or ``_MISSING``)."""
    current = obj
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return default
        current = current[part]
    return current


def require(obj: Any, path: str) -> Any:
    value = get_path(obj, path)
    if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidObjectError(f"missing required field {path}")
    return value


def require_object(obj: Any, path: str) -> dict[str, Any]:
    value = require(obj, path)
    if not isinstance(value, dict):
        raise InvalidObjectError(f"field {path} must be an object")
    return value


def require_str(obj: Any, path: str, max_length: int | None = None) -> str:
    """The field as text without surrounding blanks; the bound applies to that text."""
    text = id_text(require(obj, path))
    if text is None:
        raise InvalidObjectError(f"field {path} must be a string")
    text = text.strip()
    if max_length is not None and len(text) > max_length:
        raise InvalidObjectError(f"field {path} is longer than {max_length} characters")
    return text


def optional_str(obj: Any, path: str, max_length: int | None = None) -> str | None:
    value = get_path(obj, path, None)
    if value is None or value == "":
        return None
    return require_str(obj, path, max_length)


def optional_bool(obj: Any, path: str) -> bool | None:
    value = get_path(obj, path, None)
    if value is not None and not isinstance(value, bool):
        raise InvalidObjectError(f"field {path} must be a boolean")
    return value


def to_decimal(value: Any, path: str) -> Decimal:
    """A JSON number (int, Decimal, or a float from a client that parsed with floats) or numeric string."""
    try:
        number = exact_decimal(value, numeric_text=True)
    except NotANumberError:
        number = None
    if number is None or not number.is_finite():
        raise InvalidObjectError(f"field {path} must be a number")
    return number


def require_decimal(obj: Any, path: str, bounds: Bounds) -> Decimal:
    """A required number within ``bounds`` (rounded to ``bounds.places``)."""
    return bounds.check(require(obj, path), path)


def optional_decimal(obj: Any, path: str, bounds: Bounds) -> Decimal | None:
    value = get_path(obj, path, None)
    return None if value is None else bounds.check(value, path)


def _in_window(moment: dt.datetime) -> bool:
    return EARLIEST <= moment < LATEST


def partner_datetime(value: Any) -> dt.datetime:
    """A partner's DateTime in any of the forms of ``_DATETIME_FORM`` (surrounding blanks ignored), in UTC.
    Raises ``ValueError`` for anything else, a value that is not a string included."""
    if not isinstance(value, str) or not _DATETIME_FORM.fullmatch(value.strip()):
        raise ValueError(f"not an OCPI DateTime: {str(value)[:40]!r}")
    return parse_ocpi_datetime(value)


def to_datetime(value: Any, path: str) -> dt.datetime:
    """An OCPI DateTime between ``EARLIEST`` and ``LATEST``, in UTC."""
    try:
        moment = partner_datetime(value)
    except (ValueError, TypeError) as exc:
        raise InvalidObjectError(f"field {path} is not a valid DateTime: {str(value)[:40]!r}", path) from exc
    if not _in_window(moment):
        raise InvalidObjectError(f"field {path} must lie between {EARLIEST.year} and {LATEST.year}", path)
    return moment


def require_datetime(obj: Any, path: str) -> dt.datetime:
    return to_datetime(require(obj, path), path)


def optional_datetime(obj: Any, path: str) -> dt.datetime | None:
    value = get_path(obj, path, None)
    return None if value is None else to_datetime(value, path)


def require_enum(obj: Any, path: str, allowed: frozenset[str]) -> str:
    value = require_str(obj, path)
    if value not in allowed:
        raise InvalidObjectError(f"field {path} must be one of {', '.join(sorted(allowed))}")
    return value


# ------------------------------------------------------------------------------- FieldReader (every error)


class FieldReader:
    """Reads the fields of one JSON object, collecting every error as ``(path, text)`` in a list shared by the
    whole document; :func:`raise_collected` reports them together, the first one as ``path``.

    Each method returns the value, or None when the field is absent (and optional) or bad (error collected).
    """

    def __init__(self, obj: Any, path: str, errors: list[tuple[str, str]]) -> None:
        self.path = path
        self.errors = errors
        if not isinstance(obj, dict):
            errors.append((path or "body", "must be a JSON object"))
            obj = {}
        self.obj: dict[str, Any] = obj

    def fail(self, name: str, message: str) -> None:
        self.errors.append((join_path(self.path, name), message))

    def present(self, name: str, required: bool) -> bool:
        if self.obj.get(name) is None:
            if required:
                self.fail(name, "is required")
            return False
        return True

    def string(self, name: str, max_length: int, *, required: bool = True, upper: bool = False) -> str | None:
        """The text as sent (blanks kept, they count for the bound: the value goes into a column as is)."""
        if not self.present(name, required):
            return None
        text = id_text(self.obj[name])
        if text is None or (required and not text.strip()):
            self.fail(name, "must be a non-empty string")
            return None
        if len(text) > max_length:
            self.fail(name, f"must be at most {max_length} characters")
            return None
        return text.upper() if upper else text

    def integer(self, name: str, bounds: Bounds, *, required: bool = True) -> int | None:
        """An integer within ``bounds`` (``22.0`` is read as 22)."""
        if not self.present(name, required):
            return None
        value = self.obj[name]
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            self.fail(name, "must be an integer")
            return None
        number = exact_decimal(value)
        if not number.is_finite() or number != number.to_integral_value():
            self.fail(name, "must be an integer")
            return None
        if not bounds.minimum <= number <= bounds.maximum:  # compared before int(): 1E+999999999 stays cheap
            self.fail(name, f"must be between {bounds.minimum} and {bounds.maximum}")
            return None
        return int(number)

    def decimal(self, name: str, *, limit: int) -> Decimal | None:
        """A required number within ``-limit .. limit``, as a JSON number or numeric text (GeoLocation)."""
        if not self.present(name, True):
            return None
        try:
            value = exact_decimal(self.obj[name], numeric_text=True)
        except NotANumberError:
            self.fail(name, "must be a decimal number")
            return None
        if not value.is_finite() or not -limit <= value <= limit:  # no abs(): it overflows on 1E+999999999
            self.fail(name, f"must be between -{limit} and {limit}")
            return None
        return value

    def boolean(self, name: str, *, required: bool = True) -> bool | None:
        if not self.present(name, required):
            return None
        value = self.obj[name]
        if not isinstance(value, bool):
            self.fail(name, "must be true or false")
            return None
        return value

    def choice(self, name: str, choices: frozenset[str]) -> str | None:
        value = self.string(name, 40)
        if value is not None and value not in choices:
            self.fail(name, f"must be one of {', '.join(sorted(choices))}")
            return None
        return value

    def timestamp(self, name: str) -> dt.datetime | None:
        if not self.present(name, True):
            return None
        try:
            moment = partner_datetime(self.obj[name])
        except (ValueError, TypeError):
            self.fail(name, "must be an OCPI DateTime")
            return None
        if not _in_window(moment):
            self.fail(name, f"must lie between {EARLIEST.year} and {LATEST.year}")
            return None
        return moment

    def items(self, name: str, *, required: bool, non_empty: bool = False) -> list[Any]:
        if not self.present(name, required):
            return []
        value = self.obj[name]
        if not isinstance(value, list) or (non_empty and not value):
            self.fail(name, "must be a non-empty list" if non_empty else "must be a list")
            return []
        return value


def raise_collected(errors: list[tuple[str, str]]) -> None:
    """Raise one :class:`InvalidObjectError` listing every collected error (``path`` = the first one's)."""
    if errors:
        message = "; ".join(f"{path} {text}" for path, text in errors)
        raise InvalidObjectError(message, errors[0][0])


def jsonable(value: Any) -> Any:
    """The object ready for a JSON column: ``Decimal`` becomes a JSON number again.

    The exact amounts live in ``Numeric`` columns; the JSON copy is the archive of what the partner sent.
    ``float(Decimal("4.40"))`` prints back as ``4.4``, the same JSON number.
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and -(2**53) < value < 2**53 else float(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value
