"""Which partner is calling (by the token it sends) and which parties it speaks for, cached per process.

Used by the OCPI door (``app.roaming.door.auth``) for every request and by the pull client; the request-bound
rules (401, the party an object may be written for) are in the door.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from flask import current_app
from sqlalchemy import event, inspect, select

from app.db_session import attach_as_loaded
from app.extensions import db
from app.roaming.models import Partner, PartnerParty
from app.roaming.ocpi.auth import candidate_tokens, hash_token

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
