"""The OCPI response envelope (transport_and_format §4.1.7): ``{data, status_code, status_message, timestamp}``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.db import utcnow

# OCPI status codes (status_codes.asciidoc)
SUCCESS = 1000
CLIENT_ERROR = 2000
INVALID_OR_MISSING_PARAMETERS = 2001
NOT_ENOUGH_INFORMATION = 2002
UNKNOWN_LOCATION = 2003
UNKNOWN_TOKEN = 2004
SERVER_ERROR = 3000
UNABLE_TO_USE_CLIENT_API = 3001
UNSUPPORTED_VERSION = 3002
NO_MATCHING_ENDPOINTS = 3003


def ocpi_timestamp(moment: dt.datetime | None = None) -> str:
    """OCPI DateTime: UTC, ISO 8601, 'Z' suffix, no offset (types.asciidoc §DateTime)."""
    moment = (moment or utcnow()).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{moment.microsecond // 1000:03d}Z" if moment.microsecond else "Z"
    )


def envelope(data: Any = None, status_code: int = SUCCESS, status_message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status_code, "timestamp": ocpi_timestamp()}
    if data is not None:
        body["data"] = data
    if status_message:
        body["status_message"] = status_message
    return body
