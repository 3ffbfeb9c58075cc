"""OCPI 2.2.1 version details (``GET /ocpi/2.2.1``): the modules we implement, with the interface role each
plays on our side (we are an e-MSP: receiver of the CPO's data, sender of tokens and commands)."""

from __future__ import annotations

from flask import Response

from app.public_urls import ocpi_url
from app.roaming.door.auth import current_partner
from app.roaming.door.v221.blueprint import bp
from app.roaming.ocpi.responses import ocpi_response

VERSION = "2.2.1"

# (ModuleID, InterfaceRole). Credentials is listed as both: the spec advises SENDER for one's own credentials
# endpoint, and some peers look it up as RECEIVER.
OUR_ENDPOINTS = (
    ("credentials", "SENDER"),
    ("credentials", "RECEIVER"),
    ("locations", "RECEIVER"),
    ("tariffs", "RECEIVER"),
    ("sessions", "RECEIVER"),
    ("cdrs", "RECEIVER"),
    ("tokens", "SENDER"),
    ("commands", "SENDER"),
    ("hubclientinfo", "RECEIVER"),
)


def endpoint_list() -> list[dict[str, str]]:
    base = ocpi_url("ocpi_v221.version_details").rstrip("/")
    return [
        {"identifier": identifier, "role": role, "url": f"{base}/{identifier}"} for identifier, role in OUR_ENDPOINTS
    ]


@bp.route("", methods=["GET"], strict_slashes=False)
def version_details() -> Response:
    current_partner(registered=False)
    return ocpi_response({"version": VERSION, "endpoints": endpoint_list()})
