"""OCPI 2.2.1 hubclientinfo module, Receiver interface (mod_hub_client_info.asciidoc): a hub tells us which
parties it connects us to, and their connection status. Those parties may then send us their objects through
the hub (see ``auth.require_party``). A hub may announce only parties nobody else holds: not a CPO connected to
us directly, not another hub's, not ours (:mod:`app.roaming.partners.parties`)."""

from __future__ import annotations

from flask import Response

from app.extensions import db
from app.roaming.door.auth import current_partner, refuse_conflict
from app.roaming.door.v221.blueprint import bp
from app.roaming.ocpi.body import load_json_body
from app.roaming.ocpi.errors import CLIENT_ERROR, OcpiError
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.partners.parties import PartyConflictError
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
    body = load_json_body()  # the reader's door: RFC 8259 JSON, bounded depth, no control characters
    try:
        _, created = store_client_info(partner, parse_client_info(body, country_code, party_id))
    except PartyConflictError as conflict:  # a party of a direct partner, of another hub or ours: recorded
        raise refuse_conflict(conflict) from conflict
    except PartnerError as error:
        db.session.rollback()
        raise OcpiError(error.status_code, error.message, error.http_status) from error
    db.session.commit()
    return ocpi_response(http_status=201 if created else 200)
