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
    PENDING = "pending"  # token A handed out, not registered yet
    REGISTERED = "registered"  # credentials exchanged, token C in use
    SUSPENDED = "suspended"  # we stopped talking to them (or they unregistered)
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

    parties: Mapped[list[PartnerParty]] = relationship(back_populates="partner", cascade="all, delete-orphan")

    __table_args__ = (UniqueConstraint("country_code", "party_id"),)

    def endpoint_url(self, identifier: str, role: str) -> str | None:
        for endpoint in self.endpoints or []:
            if endpoint.get("identifier") == identifier and endpoint.get("role") == role:
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
    delivered_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("token_update_id", "partner_id"),
        Index("ix_roaming_token_deliveries_due", "status", "next_attempt_at"),
    )


class Command(Model):
    """A command we sent to a CPO (START_SESSION, STOP_SESSION, ...) and its asynchronous result."""

    __tablename__ = "roaming_commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)  # in our response_url
    partner_id: Mapped[int] = mapped_column(ForeignKey("roaming_partners.id", ondelete="RESTRICT"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"))
    command: Mapped[str] = mapped_column(String(30))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    response_result: Mapped[str | None] = mapped_column(String(30))  # CommandResponse.result
    response_timeout: Mapped[int | None]
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
