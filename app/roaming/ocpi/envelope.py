"""The OCPI response envelope (transport_and_format §4.1.7): ``{data, status_code, status_message, timestamp}``."""

from __future__ import annotations

from typing import Any

from app.roaming.ocpi.errors import SUCCESS
from app.timestamps import ocpi_timestamp


def envelope(data: Any = None, status_code: int = SUCCESS, status_message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status_code, "timestamp": ocpi_timestamp()}
    if data is not None:
        body["data"] = data
    if status_message:
        body["status_message"] = status_message
    return body
