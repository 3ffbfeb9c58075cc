"""OCPI DateTime parsing: tolerant in (offsets, missing 'Z', fractions), always UTC out."""

from __future__ import annotations

import datetime as dt


def parse_ocpi_datetime(value: str) -> dt.datetime:
    """Parse an OCPI DateTime. Offsets are honoured and converted to UTC; a value without zone is UTC (the spec
    says all times are UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty DateTime")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
