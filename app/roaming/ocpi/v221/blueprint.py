"""The OCPI 2.2.1 blueprint (``/ocpi/2.2.1/...``). Each module file adds its routes to ``bp``."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

bp = Blueprint("ocpi_v221", __name__, url_prefix="/ocpi/2.2.1")

# Configuration modules are platform-to-platform: routing headers SHALL NOT be used with them
# (transport_and_format, "Message Routing Headers"). Every other module here is a functional one.
CONFIGURATION_MODULES = frozenset({"", "credentials", "hubclientinfo"})


@bp.after_request
def echo_request_ids(response: Response) -> Response:
    """transport_and_format §4.1.4: answer with the caller's X-Request-ID and X-Correlation-ID."""
    for header in ("X-Request-ID", "X-Correlation-ID"):
        if header in request.headers:
            response.headers[header] = request.headers[header]
    return response


@bp.after_request
def add_routing_headers(response: Response) -> Response:
    """A functional module's response is addressed back to the requesting party ("Direct response": TO = the
    party the request came from, FROM = us), so a hub can route it. The requesting party is the request's
    ``OCPI-from-*`` (a hub names the CPO behind it), else the partner that called directly."""
    module = request.path[len("/ocpi/2.2.1/"):].split("/", 1)[0]
    if module in CONFIGURATION_MODULES:
        return response
    to_country, to_party = request.headers.get("OCPI-from-country-code"), request.headers.get("OCPI-from-party-id")
    if not (to_country and to_party):
        caller = g.get("ocpi_party")
        if caller is None:  # refused before we knew the caller (401): nobody to address
            return response
        to_country, to_party = caller
    response.headers["OCPI-to-country-code"] = to_country
    response.headers["OCPI-to-party-id"] = to_party
    response.headers["OCPI-from-country-code"] = current_app.config["COMPANY_COUNTRY_CODE"]
    response.headers["OCPI-from-party-id"] = current_app.config["COMPANY_PARTY_ID"]
    return response
