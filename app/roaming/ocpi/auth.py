"""Who is calling: the partner behind ``Authorization: Token ...``, and which parties it may speak for.

OCPI 2.2.1 sends the token base64-encoded; 2.1.1 peers and many 2.2 implementations send it raw. We accept
both (tolerant in) and store only a SHA-256 of the tokens we issue.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import secrets
import time
from typing import Any

from flask import current_app, g, request
from sqlalchemy import event, inspect, select

from app.db_session import attach_as_loaded
from app.extensions import db
from app.roaming.models import Partner, PartnerParty, PartnerStatus
from app.roaming.ocpi.errors import CLIENT_ERROR, OcpiError
from app.roaming.partners.parties import (
    VIA_OBJECT,
    VIA_ROUTING_HEADERS,
    PartyConflictError,
    conflict_for,
    party_key,
    record_refusal,
    take_party,
)

ROUTING_HEADERS = ("OCPI-from-country-code", "OCPI-from-party-id", "OCPI-to-country-code", "OCPI-to-party-id")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh credentials token (printable, URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def candidate_tokens(header_value: str | None) -> list[str]:
    """The token as sent and, if it is valid base64 of printable text, decoded."""
    if not header_value:
        return []
    scheme, _, value = header_value.strip().partition(" ")
    if scheme.lower() != "token" or not value.strip():
        return []
    raw = value.strip()
    candidates = [raw]
    try:
        # The spec's own example encodes a trailing newline ("example-token\n"): ignore surrounding whitespace.
        decoded = base64.b64decode(raw, validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return candidates
    if decoded and decoded.isprintable() and decoded != raw:
        candidates.append(decoded)
    return candidates


def encode_token(token: str, as_base64: bool) -> str:
    return base64.b64encode(token.encode("utf-8")).decode("ascii") if as_base64 else token


# Every OCPI request starts by finding its partner. Partners change rarely (registration, token rotation,
# suspension), so each process keeps what it found for OCPI_PARTNER_CACHE_SECONDS: a hit costs no database
# round trip. A change made in this process clears the cache at once (see _forget_partners); other processes
# see it when their entry expires, so a rotated or suspended token may be accepted by another worker for at
# most that many seconds.
_partner_cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}
_PARTNER_COLUMNS = [attribute.key for attribute in Partner.__mapper__.column_attrs]


def find_partner(header_value: str | None) -> Partner | None:
    hashes = tuple(hash_token(token) for token in candidate_tokens(header_value))
    if not hashes:
        return None
    ttl = current_app.config.get("OCPI_PARTNER_CACHE_SECONDS", 0)
    if ttl > 0:
        cached = _partner_cache.get(hashes)
        if cached is not None and cached[0] > time.monotonic():
            return _attach(cached[1])
    partner = db.session.scalar(select(Partner).where(Partner.incoming_token_hash.in_(hashes)))
    if partner is not None and ttl > 0:
        values = {key: copy.deepcopy(getattr(partner, key)) for key in _PARTNER_COLUMNS}
        _partner_cache[hashes] = (time.monotonic() + ttl, values)
    return partner


def _attach(values: dict[str, Any]) -> Partner:
    """The cached partner as a persistent object of this request's session, without a query. Relationships
    (``parties``) load lazily when a view needs them."""
    # No copy of the JSON values: code that changes a partner assigns new values (in-place changes to a JSON
    # column would not be saved anyway), and any saved change clears the cache.
    return attach_as_loaded(Partner(**values))


@event.listens_for(Partner, "after_insert")
@event.listens_for(Partner, "after_update")
@event.listens_for(Partner, "after_delete")
@event.listens_for(PartnerParty, "after_insert")
@event.listens_for(PartnerParty, "after_update")
@event.listens_for(PartnerParty, "after_delete")
def _forget_partners(mapper: Any, connection: Any, target: Any) -> None:
    _partner_cache.clear()
    _parties_cache.clear()


def current_partner(*, registered: bool = True) -> Partner:
    """The calling partner, or HTTP 401. Module endpoints need a registered partner; credentials also accept
    token A of a pending one."""
    partner = getattr(g, "ocpi_partner", None)
    if partner is None:
        partner = find_partner(request.headers.get("Authorization"))
        if partner is None or partner.status == PartnerStatus.SUSPENDED:
            raise OcpiError(CLIENT_ERROR, "Unknown or missing token", http_status=401)
        g.ocpi_partner = partner
        # Read now: after the view's commit the partner's attributes are expired, and the response's routing
        # headers (v221/blueprint.py) must not cost a query.
        g.ocpi_party = (partner.country_code, partner.party_id)
    if registered and partner.status != PartnerStatus.REGISTERED:
        raise OcpiError(CLIENT_ERROR, "Register through the credentials module first", http_status=401)
    return partner


# The parties a partner speaks for, cached like the partner itself (every CDR and location write checks them).
_parties_cache: dict[int, tuple[float, frozenset[tuple[str, str]]]] = {}


def parties_of(partner: Partner) -> frozenset[tuple[str, str]]:
    ttl = current_app.config.get("OCPI_PARTNER_CACHE_SECONDS", 0)
    parties_loaded = "parties" not in inspect(partner).unloaded
    if ttl > 0 and not parties_loaded:
        cached = _parties_cache.get(partner.id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
    parties = {(partner.country_code.upper(), partner.party_id.upper())}
    parties |= {(party.country_code.upper(), party.party_id.upper()) for party in partner.parties}
    if ttl > 0:
        _parties_cache[partner.id] = (time.monotonic() + ttl, frozenset(parties))
    return frozenset(parties)


def require_party(partner: Partner, country_code: str, party_id: str) -> tuple[str, str]:
    """Refuse objects of a party the partner does not speak for (a CPO writing another CPO's locations).

    A hub may speak for every party it has announced (credentials roles or HubClientInfo) and for the party in
    the ``OCPI-from-*`` routing headers when that matches the object, provided nobody else holds it: a party
    belongs to exactly one connection, so a party connected directly (registered or pending), another hub's or
    ours is refused with 2001 and recorded for operations (:mod:`app.roaming.partners.parties`).
    """
    key = party_key(country_code, party_id)
    if key in parties_of(partner):
        return key
    sender = (request.headers.get("OCPI-from-country-code", "").upper(),
              request.headers.get("OCPI-from-party-id", "").upper())
    via = VIA_ROUTING_HEADERS if partner.is_hub and sender == key else VIA_OBJECT
    conflict = conflict_for(partner, key, via, http_status=403)
    if conflict is not None:
        raise refuse_conflict(conflict)
    if via == VIA_ROUTING_HEADERS:
        _remember_hub_party(partner, key)
        return key
    raise OcpiError(CLIENT_ERROR, f"Not allowed to write objects of party {key[0]}/{key[1]}", http_status=403)


def refuse_conflict(conflict: PartyConflictError) -> OcpiError:
    """The answer to a refused claim on a party. Nothing of the request is kept (rolled back), the conflict is
    (committed, for operations): the door's unit of work ends here."""
    db.session.rollback()
    record_refusal(conflict)
    db.session.commit()
    return OcpiError(conflict.status_code, conflict.message, conflict.http_status)


def _remember_hub_party(partner: Partner, key: tuple[str, str]) -> None:
    exists = any(party_key(p.country_code, p.party_id) == key for p in partner.parties)
    if not exists:
        take_party(partner, key, VIA_ROUTING_HEADERS)  # drops leftovers of suspended connections
        partner.parties.append(PartnerParty(country_code=key[0], party_id=key[1], role="CPO"))
        db.session.flush()
