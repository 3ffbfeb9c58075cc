"""``/ocpi/versions``: the versions we speak (version_information_endpoint). Version details live in
``v221/versions.py``. 2.3 will add its entry here and its own package beside ``v221``."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.public_urls import ocpi_url
from app.roaming.door.auth import current_partner
from app.roaming.ocpi.responses import ocpi_response

bp = Blueprint("ocpi", __name__, url_prefix="/ocpi")

# VersionNumber -> endpoint of its version details.
SUPPORTED_VERSIONS = {"2.2.1": "ocpi_v221.version_details"}


@bp.after_request
def echo_request_ids(response: Response) -> Response:
    """transport_and_format §4.1.4: answer with the caller's X-Request-ID and X-Correlation-ID."""
    for header in ("X-Request-ID", "X-Correlation-ID"):
        if header in request.headers:
            response.headers[header] = request.headers[header]
    return response


@bp.route("/versions", methods=["GET"])
def versions() -> Response:
    """The Version list. Token A of a partner that has not registered yet is enough: it needs this to start."""
    current_partner(registered=False)
    return ocpi_response(
        [{"version": number, "url": ocpi_url(endpoint)} for number, endpoint in SUPPORTED_VERSIONS.items()]
    )
