"""OCPI 2.2.1 CDRs, Receiver interface: ``POST /ocpi/2.2.1/cdrs`` and ``GET`` by the URL we hand out."""

from __future__ import annotations

from flask import Response

from app.charging.models import Cdr
from app.extensions import db
from app.public_urls import ocpi_url
from app.roaming.cdr_listeners import cdr_stored
from app.roaming.door.auth import current_partner, require_party
from app.roaming.door.v221.blueprint import bp
from app.roaming.door.v221.locations import keeps_refused
from app.roaming.ocpi.body import load_json_object
from app.roaming.ocpi.errors import CLIENT_ERROR, OcpiError
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.partners.callers import parties_of
from app.roaming.receive import cdrs


def _cdr_url(cdr_id: int) -> str:
    return ocpi_url("ocpi_v221.get_cdr", cdr_id=cdr_id)


@bp.post("/cdrs")
@bp.post("/cdrs/")
@keeps_refused("cdrs")
def post_cdr() -> Response:
    partner = current_partner()
    data = load_json_object()
    country_code, party_id = data.get("country_code"), data.get("party_id")
    if isinstance(country_code, str) and isinstance(party_id, str):
        require_party(partner, country_code, party_id)  # missing fields are named by store_cdr below
    cdr, created = cdrs.store_cdr(partner, data)
    cdr_id, account_id = cdr.id, cdr.account_id  # read before the commit expires them (no reload query)
    db.session.commit()
    if created and account_id is not None:
        # After the commit: what the listeners do (rating queues the CDR) is a unit of work of its own, so a CDR
        # we cannot price is still stored and acknowledged.
        cdr_stored(cdr_id)
    # status_codes: 201 Created for a new CDR; a repeat changed nothing and is answered 200.
    response = ocpi_response(http_status=201 if created else 200)
    # mod_cdrs §POST: the Location header points at the stored CDR, also when this was a repeat (whoever
    # delivered it first: a hub relaying a CDR the CPO sent us directly gets the URL of that CDR).
    response.headers["Location"] = _cdr_url(cdr_id)
    return response


@bp.get("/cdrs/<int:cdr_id>")
def get_cdr(cdr_id: int) -> Response:
    partner = current_partner()
    cdr = db.session.get(Cdr, cdr_id)
    # Only a partner that sent the CDR or speaks for its CPO may read it back (a hub that relayed a CDR the CPO
    # had sent directly follows the Location we answered); others get the same 404 as for a missing one.
    if cdr is None or (cdr.partner_id != partner.id and (cdr.country_code, cdr.party_id) not in parties_of(partner)):
        raise OcpiError(CLIENT_ERROR, f"Unknown CDR {cdr_id}", http_status=404)
    return ocpi_response(cdrs.cdr_object(cdr))
