"""Where a login may send the browser next: only a path on this site (no open redirect, no header injection)."""

from __future__ import annotations

MAX_NEXT_LENGTH = 2000


def local_path_or_none(target: str | None) -> str | None:
    """``target`` if it is a path on this site ("/cards?x=1"), else None.

    A path starts with one "/": that refuses absolute URLs (``https://evil.example``, ``javascript:...``) and
    scheme-relative ones (``//evil.example``); browsers read a backslash as a slash (``/\\evil.example``), so none
    is allowed. Control characters are refused too: a CR/LF in a ``Location`` header would be header injection,
    and Werkzeug refuses it with an exception, which answered 500."""
    if not target or len(target) > MAX_NEXT_LENGTH:
        return None
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return None
    return target
