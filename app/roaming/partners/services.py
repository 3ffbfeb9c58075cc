"""Roaming partners: who they are, which parties they speak for, and the credentials objects we exchange.

A partner is one OCPI connection: a CPO directly, or a hub carrying many parties. The operator adds it with
the token A we handed over out of band (``flask roaming partner-add``); the credentials handshake
(:mod:`app.roaming.partners.handshake`) then turns it into a registered connection, and
:mod:`app.roaming.partners.lifecycle` takes it through the rest of its life (suspend, resume, unregister, register
again, remove; the moves themselves are checked in :mod:`app.roaming.partners.states`). Services here flush,
never commit.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select

from app.audit.services import Actor, record
from app.db import utcnow
from app.extensions import db
from app.ocpi_values import parse_ocpi_datetime
from app.roaming.models import Partner, PartnerParty, PartnerStatus
from app.roaming.ocpi.auth import hash_token
from app.roaming.ocpi.errors import CLIENT_ERROR, INVALID_OR_MISSING_PARAMETERS
from app.roaming.partners.errors import PartnerError as PartnerError  # re-exported: most callers import it here
from app.roaming.partners.parties import (
    HOLDING,
    VIA_CREDENTIALS,
    VIA_HUBCLIENTINFO,
    VIA_PARTNER_ADD,
    VIA_PARTNER_RESET,
    conflict_for,
    holder_of,
    our_party,
    party_key,
    take_party,
)
from app.roaming.partners.states import AUDIT_SUBJECT, Move, apply, clean_reason
from app.timestamps import ocpi_timestamp

ROLES = ("CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP")  # types.asciidoc, Role enum
PARTNER_ROLES = ("CPO", "HUB")  # what we connect to as an e-MSP
CONNECTION_STATUSES = ("CONNECTED", "OFFLINE", "PLANNED", "SUSPENDED")  # HubClientInfo ConnectionStatus
COUNTRY_CODE = re.compile(r"^[A-Za-z]{2}$")
PARTY_ID = re.compile(r"^[A-Za-z0-9]{3}$")
# Credentials token: printable non-whitespace ASCII (U+0021..U+007E), at most 64 characters.
CREDENTIALS_TOKEN = re.compile(r"^[\x21-\x7e]{1,64}$")


def _invalid(message: str) -> PartnerError:
    return PartnerError(message, INVALID_OR_MISSING_PARAMETERS, 400)


# --- partners -------------------------------------------------------------------------------------------------


def add_partner(
    *,
    name: str,
    country_code: str,
    party_id: str,
    role: str,
    token: str,
    versions_url: str | None = None,
    their_token: str | None = None,
    send_base64_tokens: bool = True,
    actor: Actor | None = None,
) -> Partner:
    """Register a partner that may call our credentials endpoint with ``token`` (its token A). Audited.

    ``their_token`` is the token A *they* gave us, for when we register with them (``flask roaming register``).
    Only a hash of ``token`` is stored: we never need to send it back.
    """
    name = (name or "").strip()
    role = (role or "").strip().upper()
    if not name:
        raise _invalid("name: required")
    if role not in PARTNER_ROLES:
        raise _invalid(f"role: must be one of {', '.join(PARTNER_ROLES)}")
    if not COUNTRY_CODE.match(country_code or ""):
        raise _invalid(f"country_code: must be 2 letters (ISO 3166-1 alpha-2), got {country_code!r}")
    if not PARTY_ID.match(party_id or ""):
        raise _invalid(f"party_id: must be 3 letters or digits, got {party_id!r}")
    for label, value in (("token", token), ("their_token", their_token)):
        if value is not None and not CREDENTIALS_TOKEN.match(value):
            raise _invalid(f"{label}: must be 1 to 64 printable ASCII characters without spaces")
    if versions_url is not None and not is_url(versions_url):
        raise _invalid(f"versions_url: not an http(s) URL: {versions_url!r}")
    country_code, party_id = country_code.upper(), party_id.upper()

    clash = db.session.scalar(
        select(Partner).where(
            or_(
                Partner.name == name,
                (Partner.country_code == country_code) & (Partner.party_id == party_id),
                Partner.incoming_token_hash == hash_token(token),
            )
        )
    )
    if clash is not None:
        if clash.name == name:
            raise PartnerError(f"a partner named {name!r} already exists (id {clash.id})")
        if (clash.country_code, clash.party_id) == (country_code, party_id):
            removed = clash.status == PartnerStatus.REMOVED
            again = " (removed: hand it a new token A with partner-token)" if removed else ""
            raise PartnerError(
                f"party {country_code}/{party_id} is already partner {clash.name!r} (id {clash.id}){again}"
            )
        raise PartnerError("that token is already in use by another partner; hand out a fresh one")
    _check_party_is_free((country_code, party_id))

    partner = Partner(
        name=name,
        country_code=country_code,
        party_id=party_id,
        is_hub=role == "HUB",
        status=PartnerStatus.PENDING,
        incoming_token_hash=hash_token(token),
        outgoing_token=their_token,
        send_base64_tokens=send_base64_tokens,
        versions_url=versions_url,
        endpoints=[],
    )
    db.session.add(partner)
    db.session.flush()
    # Pending already holds the party: a hub that announced it loses it now (a party has one connection).
    take_party(partner, (country_code, party_id), VIA_PARTNER_ADD)
    record(
        "partner.added",
        AUDIT_SUBJECT,
        partner.id,
        actor=actor,
        details={"name": name, "party": f"{country_code}/{party_id}", "hub": partner.is_hub},
    )
    return partner


def _check_party_is_free(party: tuple[str, str], besides: Partner | None = None) -> None:
    """A partner's own party may be held by nobody but a hub's announcement (which it then ends)."""
    if party == our_party():
        raise PartnerError(f"party {party[0]}/{party[1]} is our own party (COMPANY_COUNTRY_CODE/COMPANY_PARTY_ID)")
    holder = holder_of(party, besides=besides)
    if holder is not None and not holder.announced_by_hub:
        raise PartnerError(f"party {party[0]}/{party[1]} is already connected through {holder.label}")


def list_partners() -> list[Partner]:
    return list(db.session.scalars(select(Partner).order_by(Partner.name)))


def get_partner(reference: str | int) -> Partner | None:
    """A partner by id or by (case-insensitive) name, as the CLI lets the operator name it."""
    text = str(reference).strip()
    if text.isdigit():
        found = db.session.get(Partner, int(text))
        if found is not None:
            return found
    return db.session.scalar(select(Partner).where(func.lower(Partner.name) == text.lower()))


def reset_partner_token(
    partner: Partner, token: str, *, actor: Actor | None = None, reason: str | None = None
) -> Partner:
    """Hand a partner a new token A, whatever its status (unregistered, suspended, removed, or stuck with a lost
    token C): it is pending again and may register from scratch; its old token stops working now. A suspension
    ends here, on purpose: the operator lets them in again. Audited."""
    if not CREDENTIALS_TOKEN.match(token or ""):
        raise _invalid("token: must be 1 to 64 printable ASCII characters without spaces")
    reason = clean_reason(reason)
    other = db.session.scalar(
        select(Partner).where(Partner.incoming_token_hash == hash_token(token), Partner.id != partner.id)
    )
    if other is not None:
        raise PartnerError("that token is already in use by another partner; hand out a fresh one")
    check_can_come_back(partner)
    apply(partner, Move.RESET, actor=actor or Actor.system(), reason=reason)
    partner.incoming_token_hash = hash_token(token)
    partner.registered_at = None
    partner.tokens_restated_at = None
    db.session.flush()
    reclaim_parties(partner, VIA_PARTNER_RESET)
    return partner


def check_can_come_back(partner: Partner) -> None:
    """A partner that held nothing (suspended, unregistered, removed) may connect again only while its own party
    is free of other direct connections (a hub's announcement is no obstacle: it ends)."""
    if partner.status not in HOLDING:
        _check_party_is_free(party_key(partner.country_code, partner.party_id), besides=partner)


def reclaim_parties(partner: Partner, via: str) -> None:
    """After a partner comes back (new token A, resumed): its own party and the parties it still lists are its
    own again; a hub's claims on them end (recorded), and a party another connection took meanwhile stays
    theirs (dropped from this partner). Flushes."""
    own = party_key(partner.country_code, partner.party_id)
    for row in list(partner.parties):
        party = party_key(row.country_code, row.party_id)
        if party != own and conflict_for(partner, party, via) is not None:
            partner.parties.remove(row)
    for party in sorted({own} | {party_key(p.country_code, p.party_id) for p in partner.parties}):
        take_party(partner, party, via)
    db.session.flush()


def forget_credentials(partner: Partner) -> None:
    """The credentials ended: their token no longer opens anything, ours is forgotten. Flushes."""
    partner.incoming_token_hash = None
    partner.outgoing_token = None
    db.session.flush()


# --- credentials objects ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialsRole:
    role: str
    country_code: str
    party_id: str
    business_details: dict[str, Any]


@dataclass(frozen=True)
class Credentials:
    """A partner's credentials object (credentials.asciidoc), validated."""

    token: str
    url: str
    roles: list[CredentialsRole] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def is_url(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 255 and re.match(r"^https?://[^\s/]+", value) is not None


def parse_credentials(body: Any) -> Credentials:
    """Validate a credentials object; the error names the first offending field (OCPI 2001)."""
    if not isinstance(body, dict):
        raise _invalid("body: expected a Credentials JSON object")
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise _invalid("token: required string")
    if not CREDENTIALS_TOKEN.match(token):
        raise _invalid("token: must be 1 to 64 printable ASCII characters without spaces")
    url = body.get("url")
    if url is None:
        raise _invalid("url: required")
    if not is_url(url):
        raise _invalid("url: must be the http(s) URL of your versions endpoint (max 255 characters)")
    roles = body.get("roles")
    if not isinstance(roles, list) or not roles:
        raise _invalid("roles: required, a non-empty list of CredentialsRole")
    parsed: list[CredentialsRole] = []
    seen: set[tuple[str, str, str]] = set()
    for index, item in enumerate(roles):
        where = f"roles[{index}]"
        if not isinstance(item, dict):
            raise _invalid(f"{where}: expected a CredentialsRole object")
        role = item.get("role")
        if not isinstance(role, str) or role.upper() not in ROLES:
            raise _invalid(f"{where}.role: must be one of {', '.join(ROLES)}")
        country_code, party_id = item.get("country_code"), item.get("party_id")
        if not isinstance(country_code, str) or not COUNTRY_CODE.match(country_code):
            raise _invalid(f"{where}.country_code: required, 2 letters")
        if not isinstance(party_id, str) or not PARTY_ID.match(party_id):
            raise _invalid(f"{where}.party_id: required, 3 letters or digits")
        details = item.get("business_details")
        if not isinstance(details, dict):
            raise _invalid(f"{where}.business_details: required BusinessDetails object")
        if not isinstance(details.get("name"), str) or not details["name"].strip():
            raise _invalid(f"{where}.business_details.name: required")
        key = (role.upper(), country_code.upper(), party_id.upper())
        if key in seen:
            raise _invalid(f"{where}: role, party_id and country_code repeat an earlier role")
        seen.add(key)
        parsed.append(CredentialsRole(key[0], key[1], key[2], details))
    return Credentials(token=token, url=url, roles=parsed, raw=body)


def our_credentials(token: str, versions_url: str) -> dict[str, Any]:
    """Our credentials object: the token the partner must use to call us, and who we are."""
    config = current_app.config
    return {
        "token": token,
        "url": versions_url,
        "roles": [
            {
                "role": "EMSP",
                "party_id": config["COMPANY_PARTY_ID"],
                "country_code": config["COMPANY_COUNTRY_CODE"],
                "business_details": {"name": config["COMPANY_NAME"]},
            }
        ],
    }


def check_roles_belong_to(partner: Partner, credentials: Credentials) -> None:
    """The roles must include the party the token was issued to, and must not claim a party that another
    connection (or we) holds: otherwise a partner could write other parties' objects. A party a hub announced
    is no obstacle for a direct connection: it wins, and :func:`sync_parties` ends the hub's claim.

    Raises :class:`~app.roaming.partners.parties.PartyConflictError` (2001) for a conflict; the door records it."""
    own = (partner.country_code.upper(), partner.party_id.upper())
    if own not in {(role.country_code, role.party_id) for role in credentials.roles}:
        raise _invalid(f"roles: none is {own[0]}/{own[1]}, the party this token was issued to")
    for index, role in enumerate(credentials.roles):
        conflict = conflict_for(
            partner, (role.country_code, role.party_id), VIA_CREDENTIALS, prefix=f"roles[{index}]: ", http_status=400
        )
        if conflict is not None:
            raise conflict


def sync_parties(partner: Partner, roles: list[CredentialsRole]) -> None:
    """Record the parties announced in the credentials roles.

    A direct partner's parties are exactly its roles. A hub's parties also come from HubClientInfo pushes, so
    for a hub we only add and update, never drop.
    """
    wanted = {(r.country_code, r.party_id, r.role): r for r in roles}
    for country_code, party_id in sorted({(key[0], key[1]) for key in wanted}):
        take_party(partner, (country_code, party_id), VIA_CREDENTIALS)
    existing = {(p.country_code.upper(), p.party_id.upper(), p.role.upper()): p for p in partner.parties}
    now = utcnow()
    for key, role in wanted.items():
        party = existing.get(key)
        if party is None:
            partner.parties.append(
                PartnerParty(
                    country_code=key[0],
                    party_id=key[1],
                    role=key[2],
                    name=role.business_details.get("name"),
                    status="CONNECTED",
                    last_updated=now,
                )
            )
        else:
            party.name = role.business_details.get("name")
            party.status = "CONNECTED"
            party.last_updated = now
    if not partner.is_hub:
        for key, party in existing.items():
            if key not in wanted:
                partner.parties.remove(party)
    db.session.flush()


# --- HubClientInfo --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientInfo:
    country_code: str
    party_id: str
    role: str
    status: str
    last_updated: dt.datetime


def parse_client_info(body: Any, country_code: str, party_id: str) -> ClientInfo:
    """Validate a ClientInfo object pushed to ``.../hubclientinfo/{country_code}/{party_id}``."""
    if not isinstance(body, dict):
        raise _invalid("body: expected a ClientInfo JSON object")
    for name, pattern, hint in (
        ("country_code", COUNTRY_CODE, "2 letters"),
        ("party_id", PARTY_ID, "3 letters or digits"),
    ):
        value = body.get(name)
        if not isinstance(value, str) or not pattern.match(value):
            raise _invalid(f"{name}: required, {hint}")
    if (body["country_code"].upper(), body["party_id"].upper()) != (country_code.upper(), party_id.upper()):
        raise _invalid("country_code/party_id: do not match the URL")
    role, status = body.get("role"), body.get("status")
    if not isinstance(role, str) or role.upper() not in ROLES:
        raise _invalid(f"role: must be one of {', '.join(ROLES)}")
    if not isinstance(status, str) or status.upper() not in CONNECTION_STATUSES:
        raise _invalid(f"status: must be one of {', '.join(CONNECTION_STATUSES)}")
    raw_updated = body.get("last_updated")
    if raw_updated is None:
        raise _invalid("last_updated: required")
    try:
        last_updated = parse_ocpi_datetime(raw_updated)
    except (TypeError, ValueError) as exc:
        raise _invalid(f"last_updated: not a valid DateTime: {raw_updated!r}") from exc
    return ClientInfo(
        body["country_code"].upper(), body["party_id"].upper(), role.upper(), status.upper(), last_updated
    )


def store_client_info(hub: Partner, info: ClientInfo) -> tuple[PartnerParty, bool]:
    """Insert or update the hub's party; an older push than what we have is ignored (pushes may overtake each
    other). Returns the party and whether it was created."""
    if not hub.is_hub:
        raise PartnerError("only a hub may push ClientInfo", CLIENT_ERROR, 403)
    # A party belongs to one connection, whatever the role: a hub may not announce a direct CPO, another hub's
    # party or ours (PartyConflictError, recorded by the door).
    conflict = conflict_for(hub, (info.country_code, info.party_id), VIA_HUBCLIENTINFO)
    if conflict is not None:
        raise conflict
    take_party(hub, (info.country_code, info.party_id), VIA_HUBCLIENTINFO)
    party = db.session.scalar(
        select(PartnerParty).where(
            PartnerParty.partner_id == hub.id,
            PartnerParty.country_code == info.country_code,
            PartnerParty.party_id == info.party_id,
            PartnerParty.role == info.role,
        )
    )
    created = party is None
    if party is None:
        party = PartnerParty(country_code=info.country_code, party_id=info.party_id, role=info.role)
        hub.parties.append(party)
    elif party.last_updated > info.last_updated:
        return party, False
    party.status = info.status
    party.last_updated = info.last_updated
    db.session.flush()
    return party, created


def find_client_info(hub: Partner, country_code: str, party_id: str) -> PartnerParty | None:
    if not hub.is_hub:
        raise PartnerError("only a hub has ClientInfo objects", CLIENT_ERROR, 403)
    return db.session.scalar(
        select(PartnerParty)
        .where(
            PartnerParty.partner_id == hub.id,
            PartnerParty.country_code == country_code.upper(),
            PartnerParty.party_id == party_id.upper(),
        )
        .order_by(PartnerParty.id)
    )


def client_info_object(party: PartnerParty) -> dict[str, Any]:
    return {
        "party_id": party.party_id,
        "country_code": party.country_code,
        "role": party.role,
        "status": party.status,
        "last_updated": ocpi_timestamp(party.last_updated),
    }
