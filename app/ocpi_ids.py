"""The identity of OCPI ``CiString`` values: token uids, contract ids, object ids, country codes, party ids.

OCPI 2.2.1 (types.asciidoc): "CiString: Case Insensitive String. Only printable ASCII allowed." ``04de0001`` is
our card ``04DE0001``, and a CDR ``replay1`` is the CDR ``REPLAY1`` we already hold. Everything that compares
such values compares their :func:`ci_key`. Where the comparison is a database lookup, the key is *stored*
(``ocpi_id_key`` columns, or the value itself kept normalised, as card uids are), so the lookup stays a plain
index lookup on PostgreSQL and SQLite alike, and a UNIQUE constraint on the key refuses a second copy.

The key upper-cases ASCII letters and touches nothing else:

- upper rather than lower, because country codes, party ids, our card uids and contract ids are already kept
  upper-case, so for them the key is the value itself;
- ASCII only, because that is all a CiString may hold, it is exactly what SQLite's ``upper()`` does, and Python's
  ``str.upper`` would turn "ß" into "SS" (a longer key, unlike the database's). A value with other characters
  still gets a stable key; it just is not folded beyond ASCII.

Pure (standard library only): every layer may use it.
"""

from __future__ import annotations

import string

_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def ci_key(value: str) -> str:
    """The case-folded key of a CiString: ASCII letters upper-cased, every other character unchanged."""
    return value.translate(_ASCII_UPPER)


def ci_key_or_none(value: str | None) -> str | None:
    """:func:`ci_key` of an optional value (``None`` stays ``None``)."""
    return None if value is None else ci_key(value)


def ci_equal(left: str | None, right: str | None) -> bool:
    """Whether two CiStrings are the same value (two ``None`` are equal; ``None`` equals no string)."""
    if left is None or right is None:
        return left is right
    return ci_key(left) == ci_key(right)
