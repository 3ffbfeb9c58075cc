"""Roaming data: partners (CPOs and hubs), their locations and tariffs, token deliveries, commands and pull
cursors. What drivers did with them (sessions, CDRs, authorizations) is in ``app.charging.models``.

Natural keys follow OCPI: an object of a CPO is identified by (country_code, party_id, id), whoever delivers it.
The id is a CiString: it is compared through its folded key (``ocpi_id_key`` = :func:`app.ocpi_ids.ci_key`,
set whenever ``ocpi_id`` is), and every table that receives objects that may arrive twice has a unique
constraint on (country_code, party_id, ocpi_id_key), so a repeat in any spelling is recognised.
The full OCPI object is kept as JSON (``data``) next to the columns we query on, so nothing the partner sent
is lost and the columns can grow with new features.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.db import str_enum, utcnow
from app.extensions import Model
from app.ocpi_ids import ci_key

COORDINATE = Numeric(10, 7)


class PartnerStatus(enum.StrEnum):
    """Where a connection stands. Which status may go where, and why, is in ``app.roaming.partners.states``."""

    PENDING = "pending"  # token A handed out, not registered yet
    REGISTERED = "registered"  # credentials exchanged, token C in use
    # We paused it: credentials kept; our cards are refused there and nothing is pushed, pulled or commanded,
    # but its sessions and CDRs are still accepted (money that already happened is billed).
    SUSPENDED = "suspended"
    UNREGISTERED = "unregistered"  # credentials ended (they DELETEd them, or we unregistered): no traffic at all
    REMOVED = "removed"  # the connection is ended for good: its locations are hidden from drivers


class Partner(Model):
    """A roaming connection: one CPO directly, or one hub serving many parties."""

    __tablename__ = "roaming_partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    is_hub: Mapped[bool] = mapped_column(default=False)
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    status: Mapped[PartnerStatus] = mapped_column(str_enum(PartnerStatus, 24), default=PartnerStatus.PENDING)
    # The token the partner uses to call us (token A before registration, our token C after), stored hashed:
    # we only ever need to recognise it.
    incoming_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The token we use to call them (their token B, or token C they issued when we registered with them).
    outgoing_token: Mapped[str | None] = mapped_column(String(255))
    # OCPI 2.2.1 says tokens are base64-encoded in the header; some peers still expect them raw.
    send_base64_tokens: Mapped[bool] = mapped_column(default=True)
    versions_url: Mapped[str | None] = mapped_column(String(500))
    version: Mapped[str | None] = mapped_column(String(10))
    endpoints: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{identifier, role, url}]
    credentials: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # their last credentials object
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    registered_at: Mapped[dt.datetime | None]
    # The last change of status: when, by whom (a staff email, "cli", "partner NL/TCP") and why.
    status_changed_at: Mapped[dt.datetime | None]
    status_changed_by: Mapped[str | None] = mapped_column(String(255))
    status_reason: Mapped[str | None] = mapped_column(Text)
    # No token of our token list reads older than this for the partner (set when we suspend and when we resume
    # it), so the partner's next incremental Tokens GET (date_from) picks every token up again.
    tokens_restated_at: Mapped[dt.datetime | None]

    parties: Mapped[list[PartnerParty]] = relationship(back_populates="partner", cascade="all, delete-orphan")

    __table_args__ = (UniqueConstraint("country_code", "party_id"),)

    def endpoint_url(self, identifier: str, role: str | None) -> str | None:
        """The URL of a module the partner offers in ``role`` (any role when None). Module identifiers and roles
        are compared ignoring case: peers send ``"sender"`` or ``"Locations"``."""
        for endpoint in self.endpoints or []:
            their_identifier, their_role = endpoint.get("identifier"), endpoint.get("role")
            if not isinstance(their_identifier, str) or their_identifier.lower() != identifier.lower():
                continue
            if role is None or (isinstance(their_role, str) and their_role.upper() == role.upper()):
                return endpoint.get("url")
        return None


class PartnerParty(Model):
    """A party (country code + party id + role) reachable through a partner connection; a hub carries many."""

    __tablename__ = "roaming_partner_parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("roaming_partners.id", ondelete="CASCADE"), index=True)
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    role: Mapped[str] = mapped_column(String(10))  # CPO, EMSP, HUB, NAP, NSP, OTHER, SCSP
    name: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20), default="CONNECTED")  # HubClientInfo ConnectionStatus
    last_updated: Mapped[dt.datetime] = mapped_column(default=utcnow)

    partner: Mapped[Partner] = relationship(back_populates="parties")

    __table_args__ = (UniqueConstraint("country_code", "party_id", "role"),)


class PartyConflict(Model):
    """A connection tried to claim a party that belongs to another connection (or to us), or lost a claim to a
    direct connection. A party belongs to exactly one connection: such a claim is refused (``refused``), or a
    hub's claim ends when the party connects directly (``hub_claim_ended``). Kept for operations; a repeat of
    the same conflict counts ``attempts`` on its row instead of adding one per request."""

    __tablename__ = "roaming_party_conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    claimant_partner_id: Mapped[int] = mapped_column(ForeignKey("roaming_partners.id", ondelete="CASCADE"))
    holder_partner_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_partners.id", ondelete="SET NULL"))
    holder: Mapped[str] = mapped_column(String(160))  # who the party belongs to, as it was then
    via: Mapped[str] = mapped_column(String(20))  # hubclientinfo, routing_headers, object, credentials, ...
    outcome: Mapped[str] = mapped_column(String(20))  # refused, hub_claim_ended
    message: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    claimant: Mapped[Partner] = relationship(foreign_keys=[claimant_partner_id])

    __table_args__ = (
        UniqueConstraint(
            "country_code", "party_id", "claimant_partner_id", "via", "outcome", name="uq_roaming_party_conflicts_claim"
        ),
    )


class Location(Model):
    __tablename__ = "roaming_locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_partners.id", ondelete="SET NULL"), index=True)
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    ocpi_id: Mapped[str] = mapped_column(String(36))
    ocpi_id_key: Mapped[str] = mapped_column(String(36))  # ci_key(ocpi_id), set with it
    name: Mapped[str | None] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255))
    city: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(3))
    latitude: Mapped[Decimal] = mapped_column(COORDINATE)
    longitude: Mapped[Decimal] = mapped_column(COORDINATE)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    operator_name: Mapped[str | None] = mapped_column(String(255))
    publish: Mapped[bool] = mapped_column(default=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_updated: Mapped[dt.datetime] = mapped_column(index=True)

    evses: Mapped[list[Evse]] = relationship(
        back_populates="location", cascade="all, delete-orphan", order_by="Evse.id"
    )

    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "ocpi_id_key"),
        # The finder searches by bounding box first.
        Index("ix_roaming_locations_lat_lon", "latitude", "longitude"),
    )

    @validates("ocpi_id")
    def _keep_key(self, _name: str, value: str) -> str:
        self.ocpi_id_key = ci_key(value)
        return value


class Evse(Model):
    __tablename__ = "roaming_evses"

    id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("roaming_locations.id", ondelete="CASCADE"), index=True)
    uid: Mapped[str] = mapped_column(String(36))
    evse_id: Mapped[str | None] = mapped_column(String(48), index=True)
    status: Mapped[str] = mapped_column(String(20))  # AVAILABLE, CHARGING, ..., REMOVED
    max_power_kw: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))  # sanitised, see the importer
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_updated: Mapped[dt.datetime]

    location: Mapped[Location] = relationship(back_populates="evses")
    connectors: Mapped[list[Connector]] = relationship(
        back_populates="evse", cascade="all, delete-orphan", order_by="Connector.id"
    )

    __table_args__ = (UniqueConstraint("location_id", "uid"),)


class Connector(Model):
    __tablename__ = "roaming_connectors"

    id: Mapped[int] = mapped_column(primary_key=True)
    evse_id: Mapped[int] = mapped_column(ForeignKey("roaming_evses.id", ondelete="CASCADE"), index=True)
    connector_id: Mapped[str] = mapped_column(String(36))
    standard: Mapped[str] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(10))
    power_type: Mapped[str] = mapped_column(String(10))
    max_voltage: Mapped[int]
    max_amperage: Mapped[int]
    max_electric_power: Mapped[int | None]
    tariff_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_updated: Mapped[dt.datetime]

    evse: Mapped[Evse] = relationship(back_populates="connectors")

    __table_args__ = (UniqueConstraint("evse_id", "connector_id"),)


class TariffVersion(Model):
    """Every version of a CPO tariff we ever received (a CDR or a frozen session may refer to any of them)."""

    __tablename__ = "roaming_tariff_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_partners.id", ondelete="SET NULL"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    ocpi_id: Mapped[str] = mapped_column(String(36))
    ocpi_id_key: Mapped[str] = mapped_column(String(36))  # ci_key(ocpi_id), set with it
    currency: Mapped[str] = mapped_column(String(3))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_updated: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[dt.datetime | None]  # the CPO deleted the tariff; kept for old sessions

    __table_args__ = (
        # Named: the generated name would pass PostgreSQL's 63 characters.
        UniqueConstraint(
            "country_code", "party_id", "ocpi_id_key", "last_updated", name="uq_roaming_tariff_versions_version_key"
        ),
        Index("ix_roaming_tariff_versions_key", "country_code", "party_id", "ocpi_id_key", "received_at"),
        # The operations overview: a partner's newest tariff version (app.roaming.network).
        Index("ix_roaming_tariff_versions_partner_received", "partner_id", "received_at"),
    )

    @validates("ocpi_id")
    def _keep_key(self, _name: str, value: str) -> str:
        self.ocpi_id_key = ci_key(value)
        return value


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"


class TokenDelivery(Model):
    """One token update to one partner: pushed in order per token, retried with backoff until it lands."""

    __tablename__ = "roaming_token_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_update_id: Mapped[int] = mapped_column(ForeignKey("token_updates.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("roaming_partners.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, 24), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[dt.datetime | None]  # when it was last tried: the partner's health (app.roaming.network)
    delivered_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("token_update_id", "partner_id"),
        Index("ix_roaming_token_deliveries_due", "status", "next_attempt_at"),
        # The operations overview: a partner's newest delivered token update (app.roaming.network).
        Index("ix_roaming_token_deliveries_partner_delivered", "partner_id", "delivered_at"),
    )


class CommandState(enum.StrEnum):
    """Where a command stands, as support and the app show it. The question each answers for a retry: could
    sending it again do the thing twice (a second session)?"""

    SENDING = "sending"  # recorded and committed, the POST to the CPO under way
    PENDING = "pending"  # the CPO took it (ACCEPTED, or a success we could not read): result awaited
    ACCEPTED = "accepted"  # the charge point did it (CommandResult ACCEPTED)
    FAILED = "failed"  # the charge point could not (EVSE_OCCUPIED, FAILED, ...; see ``result``): retry is safe
    REJECTED = "rejected"  # the CPO refused it (REJECTED, NOT_SUPPORTED, UNKNOWN_SESSION, OCPI 2xxx): nothing done
    TIMEOUT = "timeout"  # taken by the CPO, no result within its timeout: check before sending again
    UNKNOWN = "unknown"  # no readable answer (timeout, 5xx, OCPI 3xxx): it may have arrived; never "failed, retry"
    NOT_SENT = "not_sent"  # it never reached the CPO (no connection): nothing done, retry is safe


class Command(Model):
    """A command we sent to a CPO (START_SESSION, STOP_SESSION, ...) and its asynchronous result.

    ``state`` is what happened as far as we know (:class:`CommandState`); ``response_*`` keep the CPO's
    synchronous answer (its CommandResponse, or why we have none), ``result*`` its asynchronous CommandResult."""

    __tablename__ = "roaming_commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    # In our response_url: lower-case hex (uuid4), so the CPO's spelling is found folded to lower case.
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("roaming_partners.id", ondelete="RESTRICT"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"))
    command: Mapped[str] = mapped_column(String(30))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[CommandState] = mapped_column(str_enum(CommandState), default=CommandState.SENDING, index=True)
    response_result: Mapped[str | None] = mapped_column(String(30))  # CommandResponse.result, when readable
    response_timeout: Mapped[int | None]
    # The answer's HTTP status and OCPI status_code, and in words what was wrong with it, or why there was none
    # ("timed out", "HTTP 502 from partner", "CommandResponse unreadable"); the CPO's own text is only logged.
    response_http_status: Mapped[int | None]
    response_status_code: Mapped[int | None]
    response_problem: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[str | None] = mapped_column(String(30))  # CommandResult.result
    result_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    timeout_at: Mapped[dt.datetime | None]
    result_at: Mapped[dt.datetime | None]
    # Every CommandResultType is final: once ``result`` is set it never changes. When we gave up waiting
    # (``timed_out_at``, result TIMEOUT) the CPO's result may still come; it is kept beside, not over, it.
    timed_out_at: Mapped[dt.datetime | None]
    late_result: Mapped[str | None] = mapped_column(String(30))
    late_result_message: Mapped[str | None] = mapped_column(Text)
    late_result_at: Mapped[dt.datetime | None]


class PullCursor(Model):
    """Where the pull client of a partner's Sender interface stands, so a failed sync resumes."""

    __tablename__ = "roaming_pull_cursors"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("roaming_partners.id", ondelete="CASCADE"))
    module: Mapped[str] = mapped_column(String(20))
    synced_until: Mapped[dt.datetime | None]  # date_from of the next incremental sync
    run_started_at: Mapped[dt.datetime | None]  # the sync under way: its date_to
    next_url: Mapped[str | None] = mapped_column(Text)  # page to fetch next when resuming
    objects_received: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("partner_id", "module"),)


class DuplicateObject(Model):
    """An OCPI object we held twice before ids compared case-insensitively and whoever delivered them (migration
    b7e4c2a91f30): the extra copy, raw, with the reason (``duplicate of CDR #12``). Finance and support read it.

    ``kind`` is ``cdr``, ``session``, ``location`` or ``tariff``; ``row_id`` the id the copy had in its table and
    ``kept_row_id`` the copy we kept. ``still_stored`` is true for a CDR that was already on an invoice: it stays
    in ``roaming_cdrs`` (out of the natural key, ``ocpi_id_key`` NULL) because issued invoices never change; every
    other copy was removed from its table and lives on only here. New repeats never land here: since that
    migration they are recognised on arrival and not stored.
    """

    __tablename__ = "roaming_duplicate_objects"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    ocpi_id: Mapped[str] = mapped_column(String(39))
    row_id: Mapped[int]
    kept_row_id: Mapped[int]
    partner_id: Mapped[int | None]  # who delivered the copy (no foreign key: a record, kept as it was)
    still_stored: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    found_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_roaming_duplicate_objects_kind_kept", "kind", "kept_row_id"),)


class QuarantinedObject(Model):
    """An object a partner sent us (pushed to the OCPI door or pulled from its Sender interface) that we could not
    store, kept raw with the reason, so nothing a partner sends is lost (``app.roaming.receive.quarantine``).

    ``raw`` is the object as JSON text (a pushed body as received; NUL escaped, since PostgreSQL text cannot hold
    one; at most ``OCPI_MAX_BODY_BYTES``, ``raw_truncated`` beyond). The natural key columns are filled when they
    are readable (the URL of a push, else the object). The same bad object again counts ``received_count`` on its
    row: unique on partner + module + ``object_key`` (the folded key, '' when unreadable) + ``content_hash``
    (SHA-256 of how it came and the whole raw text). Re-processing sets ``resolved_at`` and ``outcome`` once it is
    stored (or no longer needed); the row stays for audit.
    """

    __tablename__ = "roaming_quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("roaming_partners.id", ondelete="CASCADE"))
    module: Mapped[str] = mapped_column(String(20))  # locations, tariffs, sessions, cdrs
    via: Mapped[str] = mapped_column(String(10))  # push, pull
    method: Mapped[str | None] = mapped_column(String(10))  # a push's HTTP method (PUT, PATCH, POST)
    country_code: Mapped[str | None] = mapped_column(String(2))
    party_id: Mapped[str | None] = mapped_column(String(3))
    ocpi_id: Mapped[str | None] = mapped_column(String(39))
    evse_uid: Mapped[str | None] = mapped_column(String(36))  # an EVSE or Connector PUT/PATCH
    connector_id: Mapped[str | None] = mapped_column(String(36))
    object_key: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))
    raw: Mapped[str] = mapped_column(Text)
    raw_truncated: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text)
    received_count: Mapped[int] = mapped_column(default=1)
    first_received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reprocessed_at: Mapped[dt.datetime | None]  # the last re-processing attempt
    resolved_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))  # stored, repeat, stale, superseded

    partner: Mapped[Partner] = relationship()

    __table_args__ = (
        # Named: the generated name would reach PostgreSQL's 63 characters.
        UniqueConstraint("partner_id", "module", "object_key", "content_hash", name="uq_roaming_quarantine_object"),
        Index("ix_roaming_quarantine_pending", "partner_id", "module", "resolved_at"),
    )


class QuarantineOverflow(Model):
    """Objects of a partner not kept because its pending quarantine was full (``OCPI_QUARANTINE_MAX_PENDING``):
    counted, not stored, so a hostile partner cannot fill the disk."""

    __tablename__ = "roaming_quarantine_overflow"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("roaming_partners.id", ondelete="CASCADE"))
    module: Mapped[str] = mapped_column(String(20))
    dropped: Mapped[int] = mapped_column(default=0)
    first_dropped_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_dropped_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("partner_id", "module"),)
