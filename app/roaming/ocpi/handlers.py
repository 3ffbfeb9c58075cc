"""How errors look under /ocpi: every HTTP error and every OcpiError in the OCPI envelope."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app.errors import register_door_errors
from app.roaming.ocpi.envelope import envelope
from app.roaming.ocpi.errors import CLIENT_ERROR, INVALID_OR_MISSING_PARAMETERS, SERVER_ERROR, OcpiError


def _ocpi_status_for_http(http_status: int) -> int:
    if http_status >= 500:
        return SERVER_ERROR
    if http_status == 400:
        return INVALID_OR_MISSING_PARAMETERS
    return CLIENT_ERROR


def render_http_error(http: HTTPException) -> Response:
    """An HTTP error under /ocpi (404, 405, 413, 500, ...) in the OCPI envelope, keeping the HTTP status."""
    code = http.code or 500
    response = jsonify(envelope(status_code=_ocpi_status_for_http(code), status_message=http.description))
    response.status_code = code
    return response


def init_app(app: Flask) -> None:
    """Errors under /ocpi are answered in the OCPI envelope (wired from create_app through roaming.init_app)."""
    register_door_errors(app, "/ocpi", render_http_error)

    @app.errorhandler(OcpiError)
    def handle_ocpi_error(error: OcpiError) -> Response:
        response = jsonify(envelope(status_code=error.status_code, status_message=error.message))
        response.status_code = error.http_status
        return response
