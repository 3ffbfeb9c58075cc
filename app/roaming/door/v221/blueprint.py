"""The OCPI 2.2.1 blueprint (``/ocpi/2.2.1/...``). Each module file adds its routes to ``bp``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request

from app.roaming.ocpi.body import check_url_id

bp = Blueprint("ocpi_v221", __name__, url_prefix="/ocpi/2.2.1")

# The ids our URLs carry, with their length in the spec (CiString(n) in each module's request parameters; a
# command's uid is ours, a UUID of 36, its type an enum of at most 18). Integer ids (our CDR ids) fit the column.
URL_ID_LENGTHS = {
    "country_code": 2,
    "party_id": 3,
    "location_id": 36,
    "evse_uid": 36,
    "connector_id": 36,
    "session_id": 36,
    "tariff_id": 36,
    "token_uid": 36,
    "command": 30,
    "uid": 36,
}
URL_INT_MAX = 2**31 - 1


@bp.url_value_preprocessor
def check_url_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Every id in the URL is refused (400/2001 naming it) before a view looks it up: a NUL cannot even be
    compared by PostgreSQL, and an id longer than the spec allows can be neither stored nor found."""
    for name, value in (values or {}).items():
        check_url_id(name, value, URL_ID_LENGTHS.get(name, 36), URL_INT_MAX)


@bp.before_request
def bound_request_body() -> None:
    """No body over ``OCPI_MAX_BODY_BYTES`` is read: 413 (in the OCPI envelope) before the first byte is
    parsed, also for a chunked body without Content-Length (Flask >= 3.1 sets the limit per request)."""
    request.max_content_length = current_app.config["OCPI_MAX_BODY_BYTES"]


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
    module = request.path[len("/ocpi/2.2.1/") :].split("/", 1)[0]
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
