"""Timestamps as we write them for machines: UTC, ISO 8601, 'Z' suffix (the OCPI DateTime, also in tokens we keep)."""

from __future__ import annotations

import datetime as dt

from app.db import utcnow


def ocpi_timestamp(moment: dt.datetime | None = None) -> str:
    """OCPI DateTime: UTC, ISO 8601, 'Z' suffix, no offset (types.asciidoc §DateTime)."""
    moment = (moment or utcnow()).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{moment.microsecond // 1000:03d}Z" if moment.microsecond else "Z")
