"""OCPI 2.2.1 Sessions, Receiver interface: ``/ocpi/2.2.1/sessions/{country_code}/{party_id}/{session_id}``."""

from __future__ import annotations

from flask import Response

from app.extensions import db
from app.roaming.door.auth import current_partner, require_party
from app.roaming.door.v221.blueprint import bp
from app.roaming.door.v221.locations import keeps_refused
from app.roaming.ocpi.body import load_json_object
from app.roaming.ocpi.errors import CLIENT_ERROR, OcpiError
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.receive import sessions

SESSION_URL = "/sessions/<country_code>/<party_id>/<session_id>"


def _unknown(session_id: str) -> OcpiError:
    return OcpiError(CLIENT_ERROR, f"Unknown session {session_id}", http_status=404)


@bp.get(SESSION_URL)
def get_session(country_code: str, party_id: str, session_id: str) -> Response:
    partner = current_partner()
    require_party(partner, country_code, party_id)
    session = sessions.find_session(country_code, party_id, session_id)
    if session is None:
        raise _unknown(session_id)
    return ocpi_response(sessions.session_object(session))


@bp.put(SESSION_URL)
@keeps_refused("sessions")
def put_session(country_code: str, party_id: str, session_id: str) -> Response:
    partner = current_partner()
    require_party(partner, country_code, party_id)
    data = load_json_object()
    sessions.check_key(data, country_code, party_id, session_id)
    # The URL is authoritative for the key; tolerate a body that omits it.
    data = {
        **data,
        "country_code": data.get("country_code") or country_code,
        "party_id": data.get("party_id") or party_id,
        "id": data.get("id") or session_id,
    }
    # A session we do not hold yet is created: 201; a replacement of a stored one: 200 (status_codes).
    created = sessions.find_session(country_code, party_id, session_id) is None
    sessions.store_session(partner, data)
    db.session.commit()
    return ocpi_response(http_status=201 if created else 200)


@bp.patch(SESSION_URL)
@keeps_refused("sessions")
def patch_session(country_code: str, party_id: str, session_id: str) -> Response:
    partner = current_partner()
    require_party(partner, country_code, party_id)
    session = sessions.patch_session(partner, country_code, party_id, session_id, load_json_object())
    if session is None:
        raise _unknown(session_id)
    db.session.commit()
    return ocpi_response()
