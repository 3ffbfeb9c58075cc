"""What arrives, checked whole before any field is read: the request body (size, strict JSON, depth, then every
string, key and number of the tree against :data:`Shape` limits and the control-character rule) and the ids in the
URL. The rules themselves are described in :mod:`app.roaming.ocpi.reader`, which reads the fields afterwards."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from app.ocpi_values import MAX_JSON_DEPTH, JsonTooDeepError, exact_decimal, load_json
from app.roaming.ocpi.reader import Bounds, InvalidObjectError, Shape, join_path

# Any number anywhere in a stored document, also in fields we do not read: no OCPI quantity comes near it (the
# largest are counts of W or Wh in the millions), and every integer below it survives the float a JSON column
# may turn it into (2**53 ≈ 9.0e15).
NUMBER_LIMIT = Decimal(10) ** 15

# In an id or query parameter: C0 (tab, CR and LF included), DEL, C1, and lone surrogates.
_FORBIDDEN_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# In a string inside an object: the same, except tab, CR and LF. types.asciidoc forbids those too, but real feeds
# carry them (the NDW snapshot: a tab in a location name, line breaks in three tariff_alt_texts); they are
# harmless whitespace to store, print and export, and refusing them would lose a real charge point or tariff.
# NUL and the other control characters stay refused: PostgreSQL cannot read a NUL back out of JSON.
_FORBIDDEN_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def load_json_body(shape: Shape | None = None) -> Any:
    """The request body parsed with ``Decimal`` for every non-integer number, checked by :func:`check_tree`.

    The one door for every OCPI request body (objects, CommandResults, LocationReferences, Credentials,
    ClientInfo). Flask's ``request.json`` would turn ``4.40`` into a float (money never goes through a float),
    accept ``NaN`` and crash on deep nesting. The size was bounded before reading (``OCPI_MAX_BODY_BYTES``).
    """
    raw = request.get_data(cache=True)
    if (
        request.content_length is None
        and request.max_content_length is not None
        and len(raw) >= request.max_content_length
    ):
        # A body without Content-Length (chunked) is cut at the limit, not refused by werkzeug: one that reached
        # it was longer, whatever followed.
        raise RequestEntityTooLarge()
    if not raw:
        raise InvalidObjectError("request body is empty; a JSON object is required")
    try:
        body = load_json(raw)
    except JsonTooDeepError as exc:
        raise InvalidObjectError(f"request body is not accepted: JSON {exc}", "body") from exc
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidObjectError(f"request body is not valid JSON: {exc}", "body") from exc
    check_tree(body, shape)
    return body


def load_json_object(shape: Shape | None = None) -> dict[str, Any]:
    body = load_json_body(shape)
    if not isinstance(body, dict):
        raise InvalidObjectError("request body must be a JSON object", "body")
    return body


def check_url_id(name: str, value: Any, max_length: int, int_max: int) -> None:
    """An id from a URL path segment: no control character (``%00``), at most ``max_length`` characters; an
    integer id within ``0..int_max``. ``InvalidObjectError`` (400/2001) naming the URL parameter otherwise."""
    if isinstance(value, int):
        if not 0 <= value <= int_max:
            raise InvalidObjectError(f"URL parameter {name} is out of range (at most {int_max})", name)
    elif isinstance(value, str):
        bad = _FORBIDDEN_CHARACTER.search(value)
        if bad:
            raise InvalidObjectError(
                f"URL parameter {name} contains a control character (U+{ord(bad.group()):04X})", name
            )
        if len(value) > max_length:
            raise InvalidObjectError(f"URL parameter {name} is longer than {max_length} characters", name)


# ------------------------------------------------------------------------------- the whole tree


def _shown(key: str) -> str:
    """A key fit for a message (control characters escaped)."""
    return key.encode("unicode_escape", "backslashreplace").decode("ascii") if _FORBIDDEN_CHARACTER.search(key) else key


# Where a node of the tree is: (the parent's trail, key or list index), None at the top. The path text is built
# only for an error: building it for every node cost more than all the checks together.
_Trail = tuple[Any, str | int] | None


def _path_of(trail: _Trail, base: str) -> str:
    steps: list[str | int] = []
    while trail is not None:
        trail, step = trail
        steps.append(step)
    path = base
    for step in reversed(steps):
        path = f"{path}[{step}]" if isinstance(step, int) else join_path(path, _shown(str(step)))
    return path or "body"


def _forbidden(text: str) -> re.Match[str] | None:
    # isprintable() is False for every forbidden character (categories Cc and Cs) and fast: the regex runs only
    # on the rare text with some non-printable character (a no-break space, say) to see whether it is one.
    return None if text.isprintable() else _FORBIDDEN_IN_TEXT.search(text)


def check_tree(value: Any, shape: Shape | None = None, path: str = "") -> None:
    """Refuse (``InvalidObjectError`` naming the first offending field) what no stored document may hold,
    anywhere in ``value``: a control character or lone surrogate in a string or key, a number that is not
    finite or beyond ``NUMBER_LIMIT``, nesting deeper than ``MAX_JSON_DEPTH``; and, where ``shape`` declares
    it, a string longer or a number outside the spec's limit.

    Iterative (an explicit stack), so no depth of input can exhaust the recursion limit: objects that did not
    come through :func:`load_json_body` (the pull client, the importers) are checked the same way. Children are
    pushed last-first, so they are checked in document order and the first error is the one named.
    """
    stack: list[tuple[Any, Any, _Trail, int]] = [(value, shape, None, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, limit, trail, depth = pop()
        if isinstance(item, str):
            bad = _forbidden(item)
            if bad:
                where = _path_of(trail, path)
                raise InvalidObjectError(
                    f"field {where} contains a control character or lone surrogate (U+{ord(bad.group()):04X})", where
                )
            if type(limit) is int and len(item) > limit:
                where = _path_of(trail, path)
                raise InvalidObjectError(f"field {where} is longer than {limit} characters", where)
        elif isinstance(item, dict):
            if depth >= MAX_JSON_DEPTH:
                where = _path_of(trail, path)
                raise InvalidObjectError(f"field {where} is nested deeper than {MAX_JSON_DEPTH} levels", where)
            for key in item:
                if _forbidden(str(key)):
                    where = _path_of((trail, str(key)), path)
                    raise InvalidObjectError(
                        f"field name {where} contains a control character or lone surrogate", where
                    )
            fields = limit if isinstance(limit, Mapping) else _NO_FIELDS
            for key, child in reversed(item.items()):
                push((child, fields.get(key), (trail, key), depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_JSON_DEPTH:
                where = _path_of(trail, path)
                raise InvalidObjectError(f"field {where} is nested deeper than {MAX_JSON_DEPTH} levels", where)
            for index in range(len(item) - 1, -1, -1):
                push((item[index], limit, (trail, index), depth + 1))
        elif isinstance(item, int | float | Decimal) and not isinstance(item, bool):
            if isinstance(limit, Bounds):
                limit.check(item, _path_of(trail, path))
            elif isinstance(item, int):
                if not -NUMBER_LIMIT <= item <= NUMBER_LIMIT:
                    where = _path_of(trail, path)
                    raise InvalidObjectError(f"field {where} is too large a number", where)
            else:
                number = exact_decimal(item)
                # Compared, not abs(): abs() rounds to the decimal context and 1E+999999999 overflows it (a 500).
                if not number.is_finite() or not -NUMBER_LIMIT <= number <= NUMBER_LIMIT:
                    where = _path_of(trail, path)
                    raise InvalidObjectError(f"field {where} is too large a number", where)


_NO_FIELDS: Mapping[str, Any] = {}
