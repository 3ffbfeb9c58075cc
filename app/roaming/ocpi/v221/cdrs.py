"""OCPI 2.2.1 CDRs, Receiver interface: ``POST /ocpi/2.2.1/cdrs`` and ``GET`` by the URL we hand out."""

from __future__ import annotations

from flask import Response, url_for

from app.charging.models import Cdr
from app.extensions import db
from app.roaming.cdr_listeners import cdr_stored
from app.roaming.ocpi.auth import current_partner, require_party
from app.roaming.ocpi.errors import CLIENT_ERROR, OcpiError
from app.roaming.ocpi.reader import load_json_object
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.ocpi.v221.blueprint import bp
from app.roaming.receive import cdrs


def _cdr_url(cdr_id: int) -> str:
    return url_for("ocpi_v221.get_cdr", cdr_id=cdr_id, _external=True)


@bp.post("/cdrs")
@bp.post("/cdrs/")
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
    response = ocpi_response()
    # mod_cdrs §POST: the Location header points at the stored CDR, also when this was a repeat.
    response.headers["Location"] = _cdr_url(cdr_id)
    return response


@bp.get("/cdrs/<int:cdr_id>")
def get_cdr(cdr_id: int) -> Response:
    partner = current_partner()
    cdr = db.session.get(Cdr, cdr_id)
    # Only the partner that sent a CDR may read it back; others get the same 404 as for a missing one.
    if cdr is None or cdr.partner_id != partner.id:
        raise OcpiError(CLIENT_ERROR, f"Unknown CDR {cdr_id}", http_status=404)
    return ocpi_response(cdrs.cdr_object(cdr))
