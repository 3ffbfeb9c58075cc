"""The OCPI credentials handshake (credentials.asciidoc), both ways.

*They register with us*: the partner POSTs its credentials with the token A we gave it; we fetch its versions
and endpoints with its token, store them, and answer with our credentials carrying a fresh token C
(:func:`accept_registration`, :func:`accept_update`, :func:`accept_unregistration`).

*We register with them*: with the token A they gave us we fetch their versions and endpoints, issue our token
B, POST it to their credentials endpoint and keep the token C from their answer (:func:`register_with_partner`,
:func:`update_with_partner`, :func:`unregister_with_partner`).

Every URL we call here comes from the partner, so every call goes through the SSRF guard of
:class:`~app.roaming.ocpi.client.OcpiClient`, and a handshake as a whole (versions → version details →
credentials) must finish within ``OCPI_HANDSHAKE_DEADLINE``: it runs inside the partner's POST to our web
worker. Errors name the kind of failure only ("address not allowed", "timed out"); the detail is logged.

Services flush, never commit, with one deliberate hook: while answering our POST/PUT the partner may call our
versions endpoint with the new token B, so the caller passes ``publish`` (the CLI passes ``commit``) to make
token B visible to that other request before we send it.

Every status change goes through :mod:`app.roaming.partners.states` (checked, recorded, audited). The URL of
our versions endpoint we hand out is built on the one configured OCPI base URL (:func:`our_versions_url`).
Peers are read tolerantly: roles, module identifiers and interface roles in any case (``"cpo"``,
``"sender"``, ``"Locations"``) are accepted; codes are stored upper-case, identifiers lower-case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from app.audit.services import Actor
from app.db import utcnow
from app.extensions import db
from app.public_urls import PublicUrlNotConfiguredError, partner_reachable_ocpi_base_url, url_on
from app.roaming.models import Partner, PartnerStatus
from app.roaming.ocpi.auth import ROUTING_HEADERS, hash_token, new_token
from app.roaming.ocpi.client import OcpiClient, OcpiClientError
from app.roaming.ocpi.errors import (
    CLIENT_ERROR,
    NO_MATCHING_ENDPOINTS,
    SERVER_ERROR,
    UNABLE_TO_USE_CLIENT_API,
    UNSUPPORTED_VERSION,
)
from app.roaming.ocpi.transport import Deadline
from app.roaming.partners.parties import VIA_CREDENTIALS, conflict_for, record_refusal
from app.roaming.partners.services import (
    Credentials,
    CredentialsRole,
    PartnerError,
    check_can_come_back,
    check_roles_belong_to,
    forget_credentials,
    our_credentials,
    parse_credentials,
    sync_parties,
)
from app.roaming.partners.states import Move, apply, check, partner_actor

log = logging.getLogger(__name__)

OCPI_VERSION = "2.2.1"
# The spec says status codes at the OCPI layer travel with HTTP 200 (status_codes.asciidoc): the 3xxx answers
# to a registration are not transport errors. Bad input (2001) keeps the house rule of HTTP 400.
SERVER_ERROR_HTTP_STATUS = 200


class ConfigurationClient(OcpiClient):
    """OcpiClient for the configuration modules (versions, credentials): platform to platform, so routing
    headers SHALL NOT be sent (transport_and_format, Message Routing)."""

    def headers(self, **options: Any) -> dict[str, str]:
        headers = super().headers(**options)
        for name in ROUTING_HEADERS:
            headers.pop(name, None)
        return headers


@dataclass(frozen=True)
class PartnerVersion:
    """The partner's 2.2.1 version details: where they are and which endpoints they offer."""

    version: str
    details_url: str
    endpoints: list[dict[str, Any]]

    def url_of(self, identifier: str) -> str | None:
        """The endpoint URL of a module; for credentials the role is irrelevant (the spec says so)."""
        return next((e["url"] for e in self.endpoints if e["identifier"] == identifier.lower()), None)


# --- reading their versions -------------------------------------------------------------------------------------


def handshake_deadline() -> Deadline:
    """The time a whole handshake may take from now (``OCPI_HANDSHAKE_DEADLINE``)."""
    return Deadline.after(float(current_app.config["OCPI_HANDSHAKE_DEADLINE"]))


def fetch_partner_version(
    partner: Partner, versions_url: str, token: str, deadline: Deadline | None = None
) -> PartnerVersion:
    """GET their versions list with ``token``, choose 2.2.1, GET its details. Tolerant: a versions URL that
    already is the 2.2.1 details URL, or a single version object instead of a list, is accepted.

    Both calls share ``deadline`` (a new handshake deadline when none is given)."""
    client = ConfigurationClient(partner, token=token, deadline=deadline or handshake_deadline())
    data = _get_data(client, versions_url, "versions")
    if isinstance(data, dict) and "endpoints" in data:
        details_url, details = versions_url, data
    else:
        offered = [v for v in (data if isinstance(data, list) else [data]) if isinstance(v, dict)]
        chosen = next(
            (v for v in offered if str(v.get("version")) == OCPI_VERSION and isinstance(v.get("url"), str)), None
        )
        if chosen is None:
            names = ", ".join(str(v.get("version")) for v in offered) or "none"
            raise PartnerError(
                f"Unsupported version: {versions_url} offers {names}; we speak {OCPI_VERSION}",
                UNSUPPORTED_VERSION,
                SERVER_ERROR_HTTP_STATUS,
            )
        details_url = chosen["url"]
        details = _get_data(client, details_url, "version details")
    endpoints = _endpoints(details)
    if not endpoints:
        raise PartnerError(
            f"No matching endpoints: the version details at {details_url} list no usable endpoint",
            NO_MATCHING_ENDPOINTS,
            SERVER_ERROR_HTTP_STATUS,
        )
    return PartnerVersion(OCPI_VERSION, details_url, endpoints)


def _get_data(client: OcpiClient, url: str, what: str) -> Any:
    try:
        return client.get(url).data
    except OcpiClientError as exc:
        # The reason only: the URL came from the partner and the answer may be an internal service's.
        raise PartnerError(
            f"Unable to use the client's API: GET {what} failed: {exc.reason}",
            UNABLE_TO_USE_CLIENT_API,
            SERVER_ERROR_HTTP_STATUS,
        ) from exc


def _endpoints(details: Any) -> list[dict[str, Any]]:
    """Normalise the Endpoint list to ``{identifier, role, url}``; entries without identifier or url are
    skipped (tolerant in). ModuleIDs are lower-case in the spec and InterfaceRoles upper-case; peers send either
    in any case (``"Credentials"``, ``"sender"``), so they are stored that way and lookups match."""
    raw = details.get("endpoints") if isinstance(details, dict) else None
    endpoints = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        identifier, url, role = item.get("identifier"), item.get("url"), item.get("role")
        if isinstance(identifier, str) and identifier.strip() and isinstance(url, str) and url:
            endpoints.append(
                {
                    "identifier": identifier.strip().lower(),
                    "role": role.strip().upper() if isinstance(role, str) else None,
                    "url": url,
                }
            )
    return endpoints


# --- they register with us ----------------------------------------------------------------------------------------


# Whose credentials exist at all: a pending partner holds only our token A.
_HAS_CREDENTIALS = frozenset({PartnerStatus.REGISTERED, PartnerStatus.SUSPENDED})


def accept_registration(partner: Partner, body: Callable[[], Any]) -> str:
    """POST credentials: the partner (holding token A) registers. Returns the new token C for it.

    ``body`` gives the request's credentials object: it is read only after the status check, because the
    spec wants 405 for a registered client whatever it sent (a suspended one is registered too)."""
    if partner.status != PartnerStatus.PENDING:
        raise PartnerError("Already registered: use PUT to update the credentials", CLIENT_ERROR, 405)
    credentials = parse_credentials(body())
    check_roles_belong_to(partner, credentials)
    version = fetch_partner_version(partner, credentials.url, credentials.token)
    return _store_their_credentials(partner, credentials, version, registering=True)


def accept_update(partner: Partner, body: Callable[[], Any]) -> str:
    """PUT credentials: new token, endpoints fetched again even when the version is unchanged. A suspended
    partner may rotate too (a leaked token must be replaceable at any time); it stays suspended."""
    if partner.status not in _HAS_CREDENTIALS:
        raise PartnerError("Not registered: use POST to register first", CLIENT_ERROR, 405)
    credentials = parse_credentials(body())
    check_roles_belong_to(partner, credentials)
    version = fetch_partner_version(partner, credentials.url, credentials.token)
    return _store_their_credentials(partner, credentials, version, registering=False)


def accept_unregistration(partner: Partner) -> None:
    """DELETE credentials: both sides end all automated communication; their token stops working. Recorded as
    their doing (``status_changed_by`` names the partner), unlike a suspension, which is ours."""
    if partner.status not in _HAS_CREDENTIALS:
        raise PartnerError("Not registered", CLIENT_ERROR, 405)
    forget_credentials(partner)
    apply(partner, Move.UNREGISTER, actor=partner_actor(partner), reason="they unregistered (DELETE credentials)")


def _store_their_credentials(
    partner: Partner, credentials: Credentials, version: PartnerVersion, *, registering: bool
) -> str:
    # Two registrations racing with the same token A: the row lock makes the second one see the first.
    db.session.refresh(partner, with_for_update=True)
    if registering and partner.status != PartnerStatus.PENDING:
        raise PartnerError("Already registered: use PUT to update the credentials", CLIENT_ERROR, 405)
    if not registering and partner.status not in _HAS_CREDENTIALS:
        raise PartnerError("Not registered: use POST to register first", CLIENT_ERROR, 405)
    token_c = new_token()
    partner.incoming_token_hash = hash_token(token_c)  # token A (or the previous C) stops working now
    partner.outgoing_token = credentials.token
    partner.versions_url = credentials.url
    _store_version(partner, version)
    partner.credentials = {key: value for key, value in credentials.raw.items() if key != "token"}
    if registering or partner.registered_at is None:
        partner.registered_at = utcnow()
    if partner.status != PartnerStatus.SUSPENDED:
        # A suspended partner holds no party (parties.HOLDING): its parties are taken back when it resumes, so a
        # rotation meanwhile must not end the claim of a hub that carries them.
        sync_parties(partner, credentials.roles)
    if registering:
        apply(partner, Move.ACCEPT_REGISTRATION, actor=partner_actor(partner), reason="they registered with us")
    else:
        apply(partner, Move.ROTATE, actor=partner_actor(partner), reason="they rotated their credentials (PUT)")
    return token_c


def _store_version(partner: Partner, version: PartnerVersion) -> None:
    partner.version = version.version
    partner.endpoints = version.endpoints


# --- we register with them ----------------------------------------------------------------------------------------


def our_versions_url(claimed_base_url: str | None = None) -> str:
    """The absolute URL of our ``/ocpi/versions`` that partners are given: on the one configured OCPI base URL
    (``OCPI_BASE_URL``, else ``PUBLIC_BASE_URL``; never the request's Host header, see app/public_urls.py),
    refused clearly when none is configured or it is one no partner can reach (a loopback address outside
    development and tests).

    ``claimed_base_url`` is what an operator believes it is (``--our-url``, ``OCPI_PUBLIC_URL``): it must be the
    configured one, because every other URL we hand out (endpoints, command ``response_url``, ``Link``) is built on
    the configuration; a handshake on another host would split the partner's view of us in two."""
    try:
        base = partner_reachable_ocpi_base_url()
    except PublicUrlNotConfiguredError as exc:
        raise PartnerError(f"cannot tell the partner where our versions endpoint is: {exc}", SERVER_ERROR, 500) from exc
    if claimed_base_url is not None and claimed_base_url.strip().rstrip("/") != base:
        raise PartnerError(
            f"--our-url {claimed_base_url.strip()[:200]!r} is not the configured OCPI base URL {base!r}: every URL "
            "we hand out is built on one setting (OCPI_BASE_URL, else PUBLIC_BASE_URL); change that instead"
        )
    return url_on(base, "ocpi.versions")


def register_with_partner(
    partner: Partner,
    *,
    versions_url: str,
    publish: Callable[[], None] = db.session.flush,
    actor: Actor | None = None,
    reason: str | None = None,
) -> PartnerVersion:
    """Register with the partner using the token A they gave us (``partner.outgoing_token``): the first time
    (pending), or again after the credentials ended (unregistered) or the partner was removed."""
    check(partner, Move.REGISTER)
    check_can_come_back(partner)
    if not partner.versions_url:
        raise PartnerError(f"no versions URL known for {partner.name}: add it with --versions-url")
    if not partner.outgoing_token:
        raise PartnerError(f"no token from {partner.name} to register with: add it with --their-token")
    deadline = handshake_deadline()
    version = fetch_partner_version(partner, partner.versions_url, partner.outgoing_token, deadline)
    credentials_url = _credentials_url(partner, version)
    _exchange(partner, "POST", credentials_url, version, versions_url, publish, deadline)
    partner.registered_at = utcnow()
    partner.tokens_restated_at = None
    apply(partner, Move.REGISTER, actor=actor or Actor.system(), reason=reason, details={"version": version.version})
    return version


def update_with_partner(
    partner: Partner,
    *,
    versions_url: str,
    publish: Callable[[], None] = db.session.flush,
    actor: Actor | None = None,
    reason: str | None = None,
) -> PartnerVersion:
    """Rotate tokens (and refresh endpoints) with a partner we hold credentials of: PUT our new credentials.
    Our previous token stops working at once; a suspended partner stays suspended."""
    check(partner, Move.ROTATE)
    if not partner.outgoing_token:
        raise PartnerError(f"{partner.name} gave us no token to call it with; register first")
    deadline = handshake_deadline()
    version = fetch_partner_version(partner, partner.versions_url or "", partner.outgoing_token, deadline)
    _exchange(partner, "PUT", _credentials_url(partner, version), version, versions_url, publish, deadline)
    apply(partner, Move.ROTATE, actor=actor or Actor.system(), reason=reason)
    return version


def unregister_with_partner(
    partner: Partner, *, force: bool = False, actor: Actor | None = None, reason: str | None = None
) -> None:
    """DELETE our credentials at their side, then end the connection here (status unregistered). ``force`` ends it
    locally even when their side cannot be reached, or when we never registered (a pending partner's token A is
    withdrawn): they get 401 from us from now on."""
    check(partner, Move.UNREGISTER)
    if not force and partner.status not in _HAS_CREDENTIALS:
        raise PartnerError(
            f"{partner.name} is not registered (status {partner.status.value}); use --force to withdraw its token"
        )
    tell_them_we_leave(partner, force=force, command="unregister")
    forget_credentials(partner)
    apply(partner, Move.UNREGISTER, actor=actor or Actor.system(), reason=reason or "we unregistered")


def tell_them_we_leave(partner: Partner, *, force: bool, command: str) -> bool:
    """DELETE our credentials at their side when we hold any (registered or suspended, with their token and
    credentials endpoint). Returns whether they were told. A failed call is a :class:`PartnerError` unless
    ``force``, with which the caller goes on locally (logged)."""
    url = partner.endpoint_url("credentials", None)
    if partner.status not in _HAS_CREDENTIALS or not partner.outgoing_token or not url:
        return False
    try:
        ConfigurationClient(partner).delete(url)
    except OcpiClientError as exc:
        if not force:
            raise PartnerError(f"DELETE {url} failed: {exc} (use --force to {command} {partner.name} anyway)") from exc
        log.warning("%s %s: %s; done here anyway", command, partner.name, exc)
        return False
    return True


def _credentials_url(partner: Partner, version: PartnerVersion) -> str:
    url = version.url_of("credentials")
    if url is None:
        raise PartnerError(
            f"No matching endpoints: {partner.name} offers no credentials endpoint in {version.details_url}",
            NO_MATCHING_ENDPOINTS,
        )
    return url


def _exchange(
    partner: Partner,
    method: str,
    credentials_url: str,
    version: PartnerVersion,
    versions_url: str,
    publish: Callable[[], None],
    deadline: Deadline,
) -> None:
    """Send our credentials with a fresh token B and keep the token C they answer with."""
    token_b = new_token()
    previous_hash = partner.incoming_token_hash
    partner.incoming_token_hash = hash_token(token_b)
    publish()
    try:
        reply = ConfigurationClient(partner, deadline=deadline).request(
            method, credentials_url, json=our_credentials(token_b, versions_url)
        )
        theirs = parse_credentials(reply.data)
    except (OcpiClientError, PartnerError) as exc:
        partner.incoming_token_hash = previous_hash  # token B never became valid at their side
        publish()
        reason = exc.message if isinstance(exc, PartnerError) else str(exc)
        raise PartnerError(
            f"{method} {credentials_url}: {reason}", getattr(exc, "status_code", None) or UNABLE_TO_USE_CLIENT_API
        ) from exc
    partner.outgoing_token = theirs.token
    partner.versions_url = theirs.url
    _store_version(partner, version)
    partner.credentials = {key: value for key, value in theirs.raw.items() if key != "token"}
    sync_parties(partner, _unclaimed(partner, theirs.roles))


def _unclaimed(partner: Partner, roles: list[CredentialsRole]) -> list[CredentialsRole]:
    """Their answer may name parties another connection (or we) holds: those are skipped and recorded as
    conflicts, the registration itself stands (a party a hub announced is no obstacle for a direct partner:
    :func:`sync_parties` ends the hub's claim)."""
    free = []
    for role in roles:
        conflict = conflict_for(partner, (role.country_code, role.party_id), VIA_CREDENTIALS)
        if conflict is None:
            free.append(role)
        else:
            record_refusal(conflict)
    return free
