"""Who is calling the OCPI door, and which parties it may write objects for (HTTP 401 / 403 / 2001).

What a partner's status lets it call (``app.roaming.partners.states``):

* pending: versions and credentials only (it registers with token A); module endpoints answer 401;
* registered: everything;
* suspended (we paused it): versions, credentials (it may rotate or unregister), and the modules through which
  what already happened reaches us or is answered as suspended: sessions, CDRs, command results, tokens (the
  list reads every token ``valid: false``, an authorization is answered ``NOT_ALLOWED``). Locations, tariffs and
  HubClientInfo are refused with HTTP 403 / OCPI 2000 saying the connection is suspended; what we hold of them
  is kept as it was;
* unregistered or removed: no token works (401), whatever a cache of another process still remembers.
"""

from __future__ import annotations

from flask import current_app, g, request

from app.extensions import db
from app.roaming.models import Partner, PartnerParty, PartnerStatus
from app.roaming.ocpi.errors import CLIENT_ERROR, OcpiError
from app.roaming.partners.callers import find_partner, parties_of
from app.roaming.partners.parties import (
    VIA_OBJECT,
    VIA_ROUTING_HEADERS,
    PartyConflictError,
    conflict_for,
    party_key,
    record_refusal,
    take_party,
)

# The modules a suspended partner may still call (first path segment after /ocpi/<version>/).
OPEN_WHILE_SUSPENDED = frozenset({"sessions", "cdrs", "commands", "tokens"})
_MAY_CALL = frozenset({PartnerStatus.PENDING, PartnerStatus.REGISTERED, PartnerStatus.SUSPENDED})


def current_partner(*, registered: bool = True) -> Partner:
    """The calling partner, or HTTP 401. Module endpoints need a registered partner (or a suspended one, for the
    modules of :data:`OPEN_WHILE_SUSPENDED`; 403 for the others); versions and credentials also accept token A of
    a pending one."""
    partner = getattr(g, "ocpi_partner", None)
    if partner is None:
        partner = find_partner(request.headers.get("Authorization"))
        if partner is None or partner.status not in _MAY_CALL:
            raise OcpiError(CLIENT_ERROR, "Unknown or missing token", http_status=401)
        g.ocpi_partner = partner
        # Read now: after the view's commit the partner's attributes are expired, and the response's routing
        # headers (v221/blueprint.py) must not cost a query.
        g.ocpi_party = (partner.country_code, partner.party_id)
    if registered and partner.status == PartnerStatus.SUSPENDED:
        module = _module_called()
        if module not in OPEN_WHILE_SUSPENDED:
            company = current_app.config.get("COMPANY_NAME") or "the eMSP"
            raise OcpiError(
                CLIENT_ERROR,
                f"Connection suspended by {company}: {module or 'this module'} is not accepted until it is resumed "
                "(sessions and CDRs still are)",
                http_status=403,
            )
    elif registered and partner.status != PartnerStatus.REGISTERED:
        raise OcpiError(CLIENT_ERROR, "Register through the credentials module first", http_status=401)
    return partner


def _module_called() -> str:
    """The OCPI module of the request: ``/ocpi/2.2.1/locations/...`` → ``locations`` (any version)."""
    parts = request.path.split("/")
    return parts[3].lower() if len(parts) > 3 and parts[1] == "ocpi" else ""


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
    sender = (
        request.headers.get("OCPI-from-country-code", "").upper(),
        request.headers.get("OCPI-from-party-id", "").upper(),
    )
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
        take_party(partner, key, VIA_ROUTING_HEADERS)  # drops leftovers of connections that hold nothing
        partner.parties.append(PartnerParty(country_code=key[0], party_id=key[1], role="CPO"))
        db.session.flush()
