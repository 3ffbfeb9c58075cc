"""A roaming partner over its lifetime, as operations run it (``flask roaming ...`` and the back office): register
(again), suspend, resume, remove. Each is checked against the partner's status
(:mod:`app.roaming.partners.states`), recorded on the row (when, who, why) and in the audit trail.

What each status means for the traffic:

* **suspended** (our decision; credentials kept): real-time authorizations are answered ``NOT_ALLOWED``, our
  token list reads every token ``valid: false`` (``send.whitelist.TokenView``), nothing is pushed, pulled or
  commanded; their sessions, CDRs and command results are still accepted (money that already happened is billed)
  and their locations and tariffs kept as they were (new ones refused, ``door/auth.py``). Resuming restores all,
  and re-states every token to them (``tokens_restated_at``) so their next incremental pull corrects their cache.
* **unregistered** (the credentials ended, by them or by us): no token works either way.
* **removed** (for good): credentials dead (401), nothing pushed or pulled, pending token pushes dropped; its
  objects stay for the money already owed, but its locations are hidden from drivers
  (:func:`app.roaming.places.visible_locations_filter`).

Services flush, never commit; the caller commits (registering takes ``publish``, see ``handshake``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import CursorResult, delete, exists, func, select

from app.audit.services import Actor
from app.charging.models import Cdr, ChargingSession
from app.extensions import db
from app.roaming.models import DeliveryStatus, Partner, TokenDelivery
from app.roaming.partners import handshake
from app.roaming.partners.handshake import PartnerVersion
from app.roaming.partners.parties import VIA_PARTNER_RESUME
from app.roaming.partners.services import (
    CREDENTIALS_TOKEN,
    PartnerError,
    check_can_come_back,
    forget_credentials,
    is_url,
    reclaim_parties,
)
from app.roaming.partners.states import Move, apply, check, clean_reason

# An OCPI session that will never have a CDR (SessionStatus INVALID); every other one may still bring one.
NO_CDR_COMING = ("INVALID",)


def register(
    partner: Partner,
    *,
    actor: Actor,
    their_token: str | None = None,
    versions_url: str | None = None,
    claimed_base_url: str | None = None,
    reason: str | None = None,
    publish: Callable[[], None] = db.session.flush,
) -> PartnerVersion:
    """Register with the partner, the first time or again after it unregistered (or was removed): the same row,
    parties and objects, with the token A they handed us (again) and, when it moved, their versions URL.

    The new token and URL are kept even when the handshake then fails (``publish`` commits midway), so a retry
    needs neither again."""
    check(partner, Move.REGISTER)
    reason = clean_reason(reason)
    our_url = handshake.our_versions_url(claimed_base_url)
    if their_token is not None and not CREDENTIALS_TOKEN.match(their_token):
        raise PartnerError("their token: must be 1 to 64 printable ASCII characters without spaces")
    if versions_url is not None and not is_url(versions_url):
        raise PartnerError(f"versions URL: not an http(s) URL: {versions_url[:200]!r}")
    if their_token is not None:
        partner.outgoing_token = their_token
    if versions_url is not None:
        partner.versions_url = versions_url
    db.session.flush()
    return handshake.register_with_partner(partner, versions_url=our_url, publish=publish, actor=actor, reason=reason)


def rotate_credentials(
    partner: Partner,
    *,
    actor: Actor,
    claimed_base_url: str | None = None,
    reason: str | None = None,
    publish: Callable[[], None] = db.session.flush,
) -> PartnerVersion:
    """Rotate the tokens both ways (PUT credentials) and fetch their endpoints again; our previous token stops
    working at once. Works after they rotated theirs: we call them with the token of their last PUT."""
    reason = clean_reason(reason)
    our_url = handshake.our_versions_url(claimed_base_url)
    return handshake.update_with_partner(partner, versions_url=our_url, publish=publish, actor=actor, reason=reason)


def unregister(partner: Partner, *, actor: Actor, force: bool = False, reason: str | None = None) -> None:
    """DELETE our credentials at their side and end the connection (status unregistered)."""
    handshake.unregister_with_partner(partner, force=force, actor=actor, reason=clean_reason(reason))


def suspend(partner: Partner, *, actor: Actor, reason: str) -> None:
    """Pause a registered partner (our decision, with a reason): see the module docstring for what stops and what
    goes on. Its credentials stay, so :func:`resume` needs no new handshake."""
    cleaned = clean_reason(reason, required=True)
    apply(partner, Move.SUSPEND, actor=actor, reason=cleaned)
    partner.tokens_restated_at = partner.status_changed_at  # every token reads invalid from now on
    db.session.flush()


def resume(partner: Partner, *, actor: Actor, reason: str | None = None) -> None:
    """End a suspension: authorizations, pushes, pulls and commands again. Its parties are its own again (a hub
    that carried one meanwhile loses it, recorded), unless another direct connection took its own party."""
    check(partner, Move.RESUME)
    cleaned = clean_reason(reason)
    check_can_come_back(partner)
    apply(partner, Move.RESUME, actor=actor, reason=cleaned)
    partner.tokens_restated_at = partner.status_changed_at  # every token valid again for their next pull
    reclaim_parties(partner, VIA_PARTNER_RESUME)


@dataclass(frozen=True)
class Removal:
    sessions_awaiting_cdr: int  # sessions it delivered that have no CDR yet (their money may never arrive)
    told_them: bool  # our credentials were deleted at their side
    token_pushes_dropped: int  # pending token deliveries to it, dropped


def sessions_awaiting_cdr(partner: Partner) -> int:
    """Sessions this partner delivered that no CDR (of the same party, session id compared case-insensitively)
    has closed yet, invalid ones aside: money that may still come through this connection."""
    has_cdr = exists().where(
        Cdr.country_code == ChargingSession.country_code,
        Cdr.party_id == ChargingSession.party_id,
        func.upper(Cdr.session_ocpi_id) == ChargingSession.ocpi_id_key,
    )
    query = (
        select(func.count())
        .select_from(ChargingSession)
        .where(ChargingSession.partner_id == partner.id, ChargingSession.status.not_in(NO_CDR_COMING), ~has_cdr)
    )
    return db.session.scalar(query) or 0


def remove(partner: Partner, *, actor: Actor, force: bool = False, reason: str | None = None) -> Removal:
    """End the connection for good. Refused without ``force`` while sessions it delivered still wait for their
    CDR (after removal its calls get 401, so those CDRs could not arrive) or when our credentials cannot be
    deleted at their side. Its locations, tariffs, sessions and CDRs stay (money already owed); its locations
    are no longer shown to drivers."""
    check(partner, Move.REMOVE)
    cleaned = clean_reason(reason)
    waiting = sessions_awaiting_cdr(partner)
    if waiting and not force:
        raise PartnerError(
            f"{waiting} session(s) delivered by {partner.name} have no CDR yet; once removed, its calls get 401 and "
            "those CDRs cannot arrive (wait for them, or use --force)"
        )
    told = handshake.tell_them_we_leave(partner, force=force, command="remove")
    forget_credentials(partner)
    dropped_rows = db.session.execute(
        delete(TokenDelivery).where(
            TokenDelivery.partner_id == partner.id, TokenDelivery.status == DeliveryStatus.PENDING
        )
    )
    # Session.execute types every result as Result; a DELETE's is a CursorResult, which has the rowcount.
    assert isinstance(dropped_rows, CursorResult)
    dropped = dropped_rows.rowcount
    apply(
        partner,
        Move.REMOVE,
        actor=actor,
        reason=cleaned,
        details={"sessions_awaiting_cdr": waiting, "told_them": told, "token_pushes_dropped": dropped},
    )
    return Removal(sessions_awaiting_cdr=waiting, told_them=told, token_pushes_dropped=dropped)
