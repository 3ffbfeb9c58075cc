"""Building OCPI responses: the envelope, pagination headers, request id echo, parsing query filters."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, request

from app.ocpi_values import parse_ocpi_datetime
from app.public_urls import ocpi_url_of_current_path
from app.roaming.ocpi.envelope import envelope
from app.roaming.ocpi.errors import INVALID_OR_MISSING_PARAMETERS, SUCCESS, OcpiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# offset and limit count rows: at most the largest int4, which every database takes in OFFSET / LIMIT (a
# 20-digit offset was an overflow, i.e. a 500, in the database driver).
QUERY_INT_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII digits only: int() also takes " 12", "1_000" and "١٢"


def ocpi_response(
    data: Any = None, *, http_status: int = 200, status_code: int = SUCCESS, status_message: str | None = None
) -> Response:
    response = jsonify(envelope(data, status_code, status_message))
    response.status_code = http_status
    return response


def _int_arg(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    value = int(raw) if _DIGITS.fullmatch(raw) else None
    if value is None or not minimum <= value <= QUERY_INT_MAX:
        raise OcpiError(
            INVALID_OR_MISSING_PARAMETERS,
            f"{name} must be an integer from {minimum} to {QUERY_INT_MAX}, not {raw[:40]!r}",
        )
    return min(value, maximum) if maximum is not None else value


def _date_arg(name: str) -> dt.datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return parse_ocpi_datetime(raw)
    except ValueError as exc:
        raise OcpiError(INVALID_OR_MISSING_PARAMETERS, f"{name} is not a valid DateTime: {raw[:40]!r}") from exc


class PageRequest:
    """``date_from`` (inclusive), ``date_to`` (exclusive), ``offset``, ``limit`` of a Sender GET list."""

    def __init__(self, default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT) -> None:
        self.date_from = _date_arg("date_from")
        self.date_to = _date_arg("date_to")
        self.offset = _int_arg("offset", 0, 0)
        self.limit = _int_arg("limit", default_limit, 1, max_limit)
        self.max_limit = max_limit


def paginated_response(
    page: PageRequest, total: int, items: Sequence[Any], serialize: Callable[[Any], dict[str, Any]]
) -> Response:
    """The envelope with ``X-Total-Count``, ``X-Limit`` and a ``Link: <...>; rel="next"`` when more remain."""
    response = ocpi_response([serialize(item) for item in items])
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Limit"] = str(page.limit)
    next_offset = page.offset + len(items)
    if items and next_offset < total:
        params = {key: value for key, value in request.args.items() if key not in ("offset", "limit")}
        params.update({"offset": str(next_offset), "limit": str(page.limit)})
        response.headers["Link"] = f'<{ocpi_url_of_current_path()}?{urlencode(params)}>; rel="next"'
    return response
