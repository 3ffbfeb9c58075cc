"""Who a party belongs to: a party (country code + party id) belongs to exactly one connection (DESIGN §5).

A party is held by our own platform (``COMPANY_COUNTRY_CODE``/``COMPANY_PARTY_ID``), by a partner that is
connected directly (registered or pending: the party a partner was added for, and the parties of its credentials
roles), or by a hub that announced it (HubClientInfo, its credentials roles, or the ``OCPI-from-*`` routing
headers of a request it relayed). A suspended, unregistered or removed partner holds nothing: while we pause a
direct connection a hub may carry its parties (it still delivers the CDRs of its own party), and on resume the
direct connection takes them back like any direct claim.

The roles do not matter: a hub announcing a directly connected CPO as ``OTHER`` still claims that CPO's party, and
could otherwise write its locations.

* A hub may announce and speak for only parties nobody else holds, and never ours: anything else is refused
  (:class:`PartyConflictError`, OCPI 2001, nothing stored) and recorded for operations (:class:`PartyConflict`).
* A direct connection wins over a hub's announcement: when a partner is added (or comes back: resumed, handed a
  new token A, registered again; or registers with a role) for a party a hub announced, the hub's claim ends,
  recorded as a conflict, because the CPO itself is the better source of its own objects and a pending partner
  must be able to register.
* Two direct connections never share a party, and no partner may use ours.

Services flush, never commit. A refused claim is recorded by the door after it rolled the request back
(:func:`record_refusal`), so the record survives while nothing else of the request does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError

from app.db import utcnow
from app.extensions import db
from app.roaming.models import Partner, PartnerParty, PartnerStatus, PartyConflict
from app.roaming.ocpi.errors import INVALID_OR_MISSING_PARAMETERS
from app.roaming.partners.errors import PartnerError

log = logging.getLogger(__name__)

Party = tuple[str, str]  # (country_code, party_id), upper case

REFUSED = "refused"
HUB_CLAIM_ENDED = "hub_claim_ended"

# How a claim was made (PartyConflict.via).
VIA_HUBCLIENTINFO = "hubclientinfo"
VIA_ROUTING_HEADERS = "routing_headers"
VIA_OBJECT = "object"  # the country_code/party_id of an object (URL or body)
VIA_CREDENTIALS = "credentials"
VIA_PARTNER_ADD = "partner_add"
VIA_PARTNER_RESET = "partner_reset"  # flask roaming partner-token: pending again
VIA_PARTNER_RESUME = "partner_resume"  # flask roaming resume: registered again

# The statuses in which a partner holds its parties (see the module docstring).
HOLDING = frozenset({PartnerStatus.PENDING, PartnerStatus.REGISTERED})


def party_key(country_code: str, party_id: str) -> Party:
    return country_code.upper(), party_id.upper()


def our_party() -> Party:
    return party_key(current_app.config["COMPANY_COUNTRY_CODE"], current_app.config["COMPANY_PARTY_ID"])


@dataclass(frozen=True)
class Holder:
    """Who holds a party: us (``partner`` None), a direct connection, or a hub."""

    partner: Partner | None
    announced_by_hub: bool = False  # a hub's claim on a party that is not its own: a direct connection ends it

    @property
    def label(self) -> str:
        """For operations (the conflict record, the CLI)."""
        if self.partner is None:
            return "our own party"
        kind = "hub" if self.partner.is_hub else "direct partner"
        return f"{kind} {self.partner.name!r}"

    @property
    def reason(self) -> str:
        """For the partner that was refused: what the party is, without naming our other partners."""
        if self.partner is None:
            return "is our own party"
        if self.announced_by_hub:
            return "is connected to us through another hub"
        return "is connected to us directly"


class PartyConflictError(PartnerError):
    """A claim on a party held by another connection (or by us). Carries what operations need to see; plain
    values only, so it can still be recorded after the request's rollback expired every object."""

    def __init__(
        self, claimant: Partner, party: Party, holder: Holder, via: str, *, prefix: str = "", http_status: int = 409
    ) -> None:
        message = f"{prefix}party {party[0]}/{party[1]} {holder.reason}; a party belongs to exactly one connection"
        super().__init__(message, INVALID_OR_MISSING_PARAMETERS, http_status)
        self.claimant_id = claimant.id
        self.party = party
        self.holder_id = holder.partner.id if holder.partner is not None else None
        self.holder_label = holder.label
        self.via = via


def holder_of(party: Party, *, besides: Partner | None = None) -> Holder | None:
    """Who, other than ``besides``, holds ``party``; None when nobody does."""
    if party == our_party():
        return Holder(None)
    country_code, party_id = party
    live: list[ColumnElement[bool]] = [Partner.status.in_(HOLDING)]
    if besides is not None:
        live.append(Partner.id != besides.id)
    own = db.session.scalar(
        select(Partner)
        .where(func.upper(Partner.country_code) == country_code, func.upper(Partner.party_id) == party_id, *live)
        .limit(1)
    )
    if own is not None:
        return Holder(own)
    holders = (
        db.session.scalars(
            select(Partner)
            .join(PartnerParty, PartnerParty.partner_id == Partner.id)
            .where(
                func.upper(PartnerParty.country_code) == country_code,
                func.upper(PartnerParty.party_id) == party_id,
                *live,
            )
            .order_by(Partner.id)
        )
        .unique()
        .all()
    )
    direct = [partner for partner in holders if not partner.is_hub]
    if direct:
        return Holder(direct[0])
    return Holder(holders[0], announced_by_hub=True) if holders else None


def claims_directly(partner: Partner, party: Party) -> bool:
    """A CPO connection speaks directly for all its parties; a hub only for its own."""
    return not partner.is_hub or party == party_key(partner.country_code, partner.party_id)


def conflict_for(
    claimant: Partner, party: Party, via: str, *, prefix: str = "", http_status: int = 409
) -> PartyConflictError | None:
    """The conflict ``claimant`` would cause by claiming ``party``, or None when it may (then call
    :func:`take_party` before storing the claim)."""
    holder = holder_of(party, besides=claimant)
    if holder is None or (holder.announced_by_hub and claims_directly(claimant, party)):
        return None
    return PartyConflictError(claimant, party, holder, via, prefix=prefix, http_status=http_status)


def take_party(partner: Partner, party: Party, via: str) -> None:
    """Make ``party`` ``partner``'s alone before its claim is stored: a direct claim ends the claims of hubs
    (recorded as conflicts), and leftovers of connections that hold nothing (suspended, unregistered, removed)
    are dropped. Call after
    :func:`conflict_for` found no conflict. Flushes."""
    direct = claims_directly(partner, party)
    others = db.session.scalars(
        select(PartnerParty).where(
            func.upper(PartnerParty.country_code) == party[0],
            func.upper(PartnerParty.party_id) == party[1],
            PartnerParty.partner_id != partner.id,
        )
    ).all()
    for row in others:
        other = row.partner
        if other.status not in HOLDING:
            log.info("party %s/%s: dropped the claim of %s partner %s", *party, other.status.value, other.name)
        elif other.is_hub and direct:
            message = (
                f"party {party[0]}/{party[1]} ({row.role}) connected directly through {partner.name!r}; "
                f"the claim of hub {other.name!r} ended"
            )
            log.warning(message)
            record_conflict(
                claimant_id=other.id,
                party=party,
                holder_id=partner.id,
                holder_label=Holder(partner).label,
                via=via,
                outcome=HUB_CLAIM_ENDED,
                message=message,
            )
        else:  # held by a live connection: conflict_for refuses this claim before we get here
            continue
        other.parties.remove(row)
    db.session.flush()


def record_refusal(conflict: PartyConflictError) -> PartyConflict:
    """Record a refused claim (for operations). The door calls it after rolling the request back. Flushes."""
    log.warning("party conflict: partner %s refused (%s): %s", conflict.claimant_id, conflict.via, conflict.message)
    return record_conflict(
        claimant_id=conflict.claimant_id,
        party=conflict.party,
        holder_id=conflict.holder_id,
        holder_label=conflict.holder_label,
        via=conflict.via,
        outcome=REFUSED,
        message=conflict.message,
    )


def record_conflict(
    *, claimant_id: int, party: Party, holder_id: int | None, holder_label: str, via: str, outcome: str, message: str
) -> PartyConflict:
    """Insert the conflict, or count one more attempt of the same one (same party, claimant, way, outcome)."""
    key = (
        PartyConflict.country_code == party[0],
        PartyConflict.party_id == party[1],
        PartyConflict.claimant_partner_id == claimant_id,
        PartyConflict.via == via,
        PartyConflict.outcome == outcome,
    )
    now = utcnow()
    row = db.session.scalar(select(PartyConflict).where(*key))
    if row is None:
        try:
            with db.session.begin_nested():
                row = PartyConflict(
                    country_code=party[0],
                    party_id=party[1],
                    claimant_partner_id=claimant_id,
                    holder_partner_id=holder_id,
                    holder=holder_label[:160],
                    via=via,
                    outcome=outcome,
                    message=message,
                    attempts=1,
                    first_seen_at=now,
                    last_seen_at=now,
                )
                db.session.add(row)
            return row
        except IntegrityError:  # the same conflict recorded by a concurrent request a moment ago
            row = db.session.scalars(select(PartyConflict).where(*key)).one()
    row.attempts = PartyConflict.attempts + 1  # in SQL: concurrent repeats all count
    row.holder_partner_id = holder_id
    row.holder = holder_label[:160]
    row.message = message
    row.last_seen_at = now
    db.session.flush()
    return row


def list_conflicts(limit: int | None = None) -> list[PartyConflict]:
    """The conflicts, most recent first (the operations page and ``flask roaming party-conflicts``)."""
    query = select(PartyConflict).order_by(PartyConflict.last_seen_at.desc(), PartyConflict.id.desc())
    return list(db.session.scalars(query.limit(limit) if limit else query))
