"""Reading OCPI objects sent by partners: exact numbers, required fields named by their path.

Used by the Sessions and CDRs receivers (and the pull client through their services). Tolerant in: unknown
fields are kept, numbers may arrive as JSON numbers or strings, timestamps with offsets. Strict about what we
need: a missing or malformed required field raises :class:`InvalidObjectError` (OCPI 2001, HTTP 400) naming the
field, before anything is stored.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request

from app.roaming.ocpi.errors import INVALID_OR_MISSING_PARAMETERS, OcpiError
from app.roaming.ocpi.timestamps import parse_ocpi_datetime

_MISSING = object()


class InvalidObjectError(OcpiError, ValueError):
    """An OCPI object we cannot accept. It is an ``OcpiError`` (the HTTP door answers 400/2001) and a
    ``ValueError`` (batch callers such as the pull client can catch it without knowing OCPI)."""

    def __init__(self, message: str) -> None:
        super().__init__(INVALID_OR_MISSING_PARAMETERS, message, http_status=400)


def load_json_body() -> Any:
    """The request body parsed with ``Decimal`` for every non-integer number.

    Flask's ``request.json`` would turn ``4.40`` into a float, and money never goes through a float.
    """
    raw = request.get_data(cache=True)
    if not raw:
        raise InvalidObjectError("request body is empty; a JSON object is required")
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidObjectError(f"request body is not valid JSON: {exc}") from exc


def load_json_object() -> dict[str, Any]:
    body = load_json_body()
    if not isinstance(body, dict):
        raise InvalidObjectError("request body must be a JSON object")
    return body


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
    value = require(obj, path)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidObjectError(f"field {path} must be a string")
    text = str(value).strip()
    if max_length is not None and len(text) > max_length:
        raise InvalidObjectError(f"field {path} is longer than {max_length} characters")
    return text


def optional_str(obj: Any, path: str, max_length: int | None = None) -> str | None:
    value = get_path(obj, path, None)
    if value is None or value == "":
        return None
    return require_str(obj, path, max_length)


def to_decimal(value: Any, path: str) -> Decimal:
    """A JSON number (int, Decimal, or a float from a client that parsed with floats) or numeric string."""
    if isinstance(value, bool):
        raise InvalidObjectError(f"field {path} must be a number")
    if isinstance(value, float):
        value = repr(value)  # the shortest text that round-trips: 4.4 stays 4.4, not 4.4000000000000003552
    try:
        number = Decimal(value) if isinstance(value, str | int | Decimal) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InvalidObjectError(f"field {path} must be a number")
    return number


def require_decimal(obj: Any, path: str) -> Decimal:
    return to_decimal(require(obj, path), path)


def optional_decimal(obj: Any, path: str) -> Decimal | None:
    value = get_path(obj, path, None)
    return None if value is None else to_decimal(value, path)


def to_datetime(value: Any, path: str) -> dt.datetime:
    try:
        return parse_ocpi_datetime(value)
    except (ValueError, TypeError) as exc:
        raise InvalidObjectError(f"field {path} is not a valid DateTime: {value!r}") from exc


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


def jsonable(value: Any) -> Any:
    """The object ready for a JSON column: ``Decimal`` becomes a JSON number again.

    The exact amounts live in ``Numeric`` columns; the JSON copy is the archive of what the partner sent.
    ``float(Decimal("4.40"))`` prints back as ``4.4``, the same JSON number.
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value
