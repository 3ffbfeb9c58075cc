"""OCPI 2.2.1 Commands, Sender interface: the ``response_url`` where CPOs POST the asynchronous
``CommandResult`` (``/ocpi/2.2.1/commands/{command}/{uid}``)."""

from __future__ import annotations

from flask import Response

from app.extensions import db
from app.roaming.door.auth import current_partner
from app.roaming.door.v221.blueprint import bp
from app.roaming.ocpi.body import load_json_body
from app.roaming.ocpi.errors import CLIENT_ERROR, OcpiError
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.send import commands


@bp.post("/commands/<command>/<uid>")
def command_result(command: str, uid: str) -> Response:
    partner = current_partner()
    stored = commands.record_result(partner, command, uid, load_json_body())
    if stored is None:
        raise OcpiError(CLIENT_ERROR, f"Unknown command {command}/{uid}", http_status=404)
    db.session.commit()
    return ocpi_response()
