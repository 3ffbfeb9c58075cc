"""OCPI 2.2.1 hubclientinfo module, Receiver interface (mod_hub_client_info.asciidoc): a hub tells us which
parties it connects us to, and their connection status. Those parties may then send us their objects through
the hub (see ``auth.require_party``)."""

from __future__ import annotations

from flask import Response, request

from app.extensions import db
from app.roaming.ocpi.auth import current_partner
from app.roaming.ocpi.errors import CLIENT_ERROR, INVALID_OR_MISSING_PARAMETERS, OcpiError
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.ocpi.v221.blueprint import bp
from app.roaming.partners.services import (
    PartnerError,
    client_info_object,
    find_client_info,
    parse_client_info,
    store_client_info,
)


@bp.route("/hubclientinfo/<country_code>/<party_id>", methods=["GET"])
def get_client_info(country_code: str, party_id: str) -> Response:
    partner = current_partner()
    try:
        party = find_client_info(partner, country_code, party_id)
    except PartnerError as error:
        raise OcpiError(error.status_code, error.message, error.http_status) from error
    if party is None:
        raise OcpiError(CLIENT_ERROR, f"Unknown ClientInfo {country_code}/{party_id}", 404)
    return ocpi_response(client_info_object(party))


@bp.route("/hubclientinfo/<country_code>/<party_id>", methods=["PUT"])
def put_client_info(country_code: str, party_id: str) -> Response:
    partner = current_partner()
    if not partner.is_hub:
        raise OcpiError(CLIENT_ERROR, "Only a hub may push ClientInfo", 403)
    body = request.get_json(silent=True)
    if body is None:
        raise OcpiError(INVALID_OR_MISSING_PARAMETERS, "body: expected a ClientInfo JSON object")
    try:
        _, created = store_client_info(partner, parse_client_info(body, country_code, party_id))
    except PartnerError as error:
        db.session.rollback()
        raise OcpiError(error.status_code, error.message, error.http_status) from error
    db.session.commit()
    return ocpi_response(http_status=201 if created else 200)
