"""Stable pagination: a cursor is the sort key of the last result of a page, opaque to the client.

Results are ordered by a key that ends with the location's row id, so the order is total and a page starts
strictly after the previous page's last key: a location is never shown twice or skipped because others were
added or moved meanwhile (it may appear later in the order if it moved). The cursor carries the search's
fingerprint, so a cursor of one search is refused by another (different place, radius, filters or sort) instead
of silently paging through the wrong list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from typing import Any

MAX_CURSOR_LENGTH = 512
Key = tuple[Any, ...]


class CursorError(ValueError):
    """The cursor is not one this search handed out."""


def fingerprint(*parts: object) -> str:
    """A short digest of what defines a search (not its page size nor its cursor)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def encode_cursor(search: str, key: Key) -> str:
    raw = json.dumps({"s": search, "k": list(key)}, separators=(",", ":"), allow_nan=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, search: str, shape: tuple[type, ...]) -> Key:
    """The key in ``cursor``, checked against this search's fingerprint and the key's ``shape`` (types)."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise CursorError("is too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise CursorError("is not a cursor of this search") from exc
    if not isinstance(document, dict) or document.get("s") != search:
        raise CursorError("belongs to another search (place, filters or sort changed): start again without it")
    key = document.get("k")
    if not isinstance(key, list) or len(key) != len(shape):
        raise CursorError("is not a cursor of this search")
    for value, kind in zip(key, shape, strict=True):
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            raise CursorError("is not a cursor of this search")
    return tuple(float(v) if kind is float else v for v, kind in zip(key, shape, strict=True))
