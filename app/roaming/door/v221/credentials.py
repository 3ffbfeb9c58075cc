"""OCPI 2.2.1 credentials module (credentials.asciidoc): a partner registers with us, rotates its token, and
unregisters. The handshake logic lives in :mod:`app.roaming.partners.handshake`; this file is only the HTTP door.

A suspended partner may still GET, rotate (PUT) and unregister (DELETE): it stays suspended when it rotates. The
``url`` we answer with is on the one configured OCPI base URL; without one the exchange is refused (OCPI 3000)
before anything changes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from flask import Response, current_app, request

from app.extensions import db
from app.roaming.door.auth import current_partner, refuse_conflict
from app.roaming.door.v221.blueprint import bp
from app.roaming.models import Partner
from app.roaming.ocpi.auth import candidate_tokens, hash_token
from app.roaming.ocpi.body import load_json_body
from app.roaming.ocpi.errors import CLIENT_ERROR, SERVER_ERROR, OcpiError
from app.roaming.ocpi.reader import Shape
from app.roaming.ocpi.responses import ocpi_response
from app.roaming.partners import handshake
from app.roaming.partners.parties import PartyConflictError
from app.roaming.partners.services import PartnerError, our_credentials
from app.roaming.receive.location_validation import BUSINESS_DETAILS

_SLOTS_KEY = "ocpi_handshake_slots"
_SLOTS_LOCK = threading.Lock()


def _ocpi_error(error: PartnerError) -> OcpiError:
    return OcpiError(error.status_code, error.message, error.http_status)


# What the handshake does not bound itself (it checks token, url, roles and their parties): the business details
# we keep (PartyParty.name) and the rest of the object, stored as the partner's credentials.
CREDENTIALS_SHAPE: Shape = {"roles": {"business_details": BUSINESS_DETAILS}}


def _body() -> Any:
    """The credentials object through the reader's door (RFC 8259 JSON, bounded depth, no control characters);
    the handshake validates its fields."""
    return load_json_body(CREDENTIALS_SHAPE)


def _token_used(partner: Partner) -> str:
    """The caller's token as it matched (raw or base64-decoded): we only keep its hash, so this is the one
    place we can read it back."""
    for token in candidate_tokens(request.headers.get("Authorization")):
        if hash_token(token) == partner.incoming_token_hash:
            return token
    raise OcpiError(CLIENT_ERROR, "Unknown or missing token", 401)


@bp.route("/credentials", methods=["GET"])
def get_credentials() -> Response:
    """Our credentials object for the caller: the token it authenticated with (we store no plain token C)."""
    partner = current_partner(registered=False)
    try:
        versions_url = handshake.our_versions_url()
    except PartnerError as error:
        raise _ocpi_error(error) from error
    return ocpi_response(our_credentials(_token_used(partner), versions_url))


def _handshake_slots() -> threading.BoundedSemaphore:
    """The per-process limit on credentials exchanges under way (``OCPI_CONCURRENT_HANDSHAKES``)."""
    with _SLOTS_LOCK:
        slots = current_app.extensions.get(_SLOTS_KEY)
        if slots is None:
            slots = threading.BoundedSemaphore(int(current_app.config["OCPI_CONCURRENT_HANDSHAKES"]))
            current_app.extensions[_SLOTS_KEY] = slots
    return cast(threading.BoundedSemaphore, slots)


def _exchange(accept: Callable[[Partner, Callable[[], Any]], str]) -> Response:
    """POST (register) and PUT (rotate): the partner's credentials in, ours with a fresh token C out.

    The exchange calls the partner back (versions, details) before it answers, so it may hold this thread for
    up to the handshake deadline: only a few run at once per process, and the rest are asked to come back,
    so slow partners can never take every thread from real-time authorization and CDRs."""
    partner = current_partner(registered=False)
    slots = _handshake_slots()
    if not slots.acquire(blocking=False):
        raise OcpiError(SERVER_ERROR, "Too many credentials exchanges under way; retry in a minute", 503)
    try:
        return _exchange_in_slot(partner, accept)
    finally:
        slots.release()


def _exchange_in_slot(partner: Partner, accept: Callable[[Partner, Callable[[], Any]], str]) -> Response:
    try:
        versions_url = handshake.our_versions_url()  # refused before the partner is called when unknown
        token_c = accept(partner, _body)
    except PartyConflictError as conflict:  # a role naming a party another connection (or we) holds: recorded
        raise refuse_conflict(conflict) from conflict
    except PartnerError as error:
        db.session.rollback()
        raise _ocpi_error(error) from error
    answer = our_credentials(token_c, versions_url)
    db.session.commit()
    return ocpi_response(answer)


@bp.route("/credentials", methods=["POST"])
def register_credentials() -> Response:
    return _exchange(handshake.accept_registration)


@bp.route("/credentials", methods=["PUT"])
def update_credentials() -> Response:
    return _exchange(handshake.accept_update)


@bp.route("/credentials", methods=["DELETE"])
def delete_credentials() -> Response:
    partner = current_partner(registered=False)
    try:
        handshake.accept_unregistration(partner)
    except PartnerError as error:
        raise _ocpi_error(error) from error
    db.session.commit()
    return ocpi_response()
