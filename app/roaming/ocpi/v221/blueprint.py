"""The OCPI 2.2.1 blueprint (``/ocpi/2.2.1/...``). Each module file adds its routes to ``bp``."""

from __future__ import annotations

from flask import Blueprint, Response, request

bp = Blueprint("ocpi_v221", __name__, url_prefix="/ocpi/2.2.1")


@bp.after_request
def echo_request_ids(response: Response) -> Response:
    """transport_and_format §4.1.4: answer with the caller's X-Request-ID and X-Correlation-ID."""
    for header in ("X-Request-ID", "X-Correlation-ID"):
        if header in request.headers:
            response.headers[header] = request.headers[header]
    return response
