"""What drivers did: charging sessions, charge detail records and real-time authorizations.

These are the e-MSP's own records, whoever delivered them (a CPO directly, a hub, a pull): billing, rating, the
portal and support read them; roaming writes them. The natural key of a session or CDR is the CPO's party and
the object's id, as in OCPI, *whoever delivers it*: the sending partner is not part of it, and the id is a
CiString, compared through its folded key (``ocpi_id_key``, see :mod:`app.ocpi_ids`) with a UNIQUE constraint on
(country_code, party_id, ocpi_id_key). So ``replay1`` after ``REPLAY1``, or a hub relaying a CDR the CPO sent us
directly, is recognised as the same object. ``ocpi_id`` keeps the CPO's own spelling; country_code and party_id
are stored upper-case. The full OCPI object is kept as JSON (``data``) beside the columns we query on.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.db import utcnow
from app.extensions import Model
from app.ocpi_ids import ci_key, ci_key_or_none

KWH = Numeric(14, 4)
PRICE = Numeric(14, 4)


class ChargingSession(Model):
    __tablename__ = "roaming_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_partners.id", ondelete="SET NULL"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    ocpi_id: Mapped[str] = mapped_column(String(36))
    ocpi_id_key: Mapped[str] = mapped_column(String(36))  # ci_key(ocpi_id), set with it
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    start_date_time: Mapped[dt.datetime]
    end_date_time: Mapped[dt.datetime | None]
    kwh: Mapped[Decimal] = mapped_column(KWH)
    location_ocpi_id: Mapped[str] = mapped_column(String(36))
    evse_uid: Mapped[str] = mapped_column(String(36))
    connector_id: Mapped[str] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(3))
    # The tariff version in force when the session started: the driver is billed from it (price promise).
    frozen_tariff_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_tariff_versions.id", ondelete="RESTRICT"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_updated: Mapped[dt.datetime] = mapped_column(index=True)

    __table_args__ = (
        UniqueConstraint("country_code", "party_id", "ocpi_id_key"),
        # The operations overview: a partner's newest session (app.roaming.network).
        Index("ix_roaming_sessions_partner_updated", "partner_id", "last_updated"),
    )

    @validates("ocpi_id")
    def _keep_key(self, _name: str, value: str) -> str:
        self.ocpi_id_key = ci_key(value)
        return value


class Cdr(Model):
    __tablename__ = "roaming_cdrs"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_partners.id", ondelete="RESTRICT"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    ocpi_id: Mapped[str] = mapped_column(String(39))
    # ci_key(ocpi_id), set with it. NULL only on a CDR we held twice before ids were compared case-insensitively
    # and that was already invoiced: kept for the issued invoice, out of the natural key (migration b7e4c2a91f30
    # and roaming_duplicate_objects say which).
    ocpi_id_key: Mapped[str | None] = mapped_column(String(39))
    session_ocpi_id: Mapped[str | None] = mapped_column(String(36), index=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    token_uid: Mapped[str] = mapped_column(String(36))
    start_date_time: Mapped[dt.datetime] = mapped_column(index=True)
    end_date_time: Mapped[dt.datetime]
    location_ocpi_id: Mapped[str] = mapped_column(String(36))
    evse_uid: Mapped[str] = mapped_column(String(36))
    country: Mapped[str] = mapped_column(String(3))  # where the charging took place (VAT)
    currency: Mapped[str] = mapped_column(String(3))
    total_energy: Mapped[Decimal] = mapped_column(KWH)
    total_time: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    total_cost_excl_vat: Mapped[Decimal] = mapped_column(PRICE)
    total_cost_incl_vat: Mapped[Decimal | None] = mapped_column(PRICE)
    credit: Mapped[bool] = mapped_column(default=False)
    credit_reference_id: Mapped[str | None] = mapped_column(String(39))
    credit_reference_key: Mapped[str | None] = mapped_column(String(39))  # ci_key(credit_reference_id)
    original_cdr_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_cdrs.id", ondelete="RESTRICT"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_updated: Mapped[dt.datetime] = mapped_column(index=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (
        # "The same CDR twice is stored once", whoever delivers it: unique on the CPO's party + the folded id.
        UniqueConstraint("country_code", "party_id", "ocpi_id_key"),
        # Every new CDR looks for credit CDRs that arrived before it and name it (store_cdr): without this
        # (small, credit-only) index that lookup read every CDR of the party.
        Index(
            "ix_roaming_cdrs_credit_reference",
            "country_code",
            "party_id",
            "credit_reference_key",
            postgresql_where=text("credit"),
            sqlite_where=text("credit"),
        ),
        # The operations overview: a partner's newest CDR (app.roaming.network).
        Index("ix_roaming_cdrs_partner_received", "partner_id", "received_at"),
        # Deleting a CDR looks for the credit CDRs that name it (original_cdr_id, ON DELETE RESTRICT): without this
        # index, a scan of every CDR per CDR deleted. Only credits carry the link, hence partial (small, and an
        # ordinary CDR's insert does not touch it).
        Index(
            "ix_roaming_cdrs_original_cdr_id",
            "original_cdr_id",
            postgresql_where=text("original_cdr_id IS NOT NULL"),
            sqlite_where=text("original_cdr_id IS NOT NULL"),
        ),
        # Rating's pass over CDRs without a charge walks them in rating order (app.rating.pending): originals
        # before credits, oldest first; only CDRs of a known account are rated.
        Index(
            "ix_roaming_cdrs_rating_order",
            "credit",
            "start_date_time",
            "id",
            postgresql_where=text("account_id IS NOT NULL"),
            sqlite_where=text("account_id IS NOT NULL"),
        ),
    )

    @validates("ocpi_id")
    def _keep_key(self, _name: str, value: str) -> str:
        self.ocpi_id_key = ci_key(value)
        return value

    @validates("credit_reference_id")
    def _keep_credit_reference_key(self, _name: str, value: str | None) -> str | None:
        self.credit_reference_key = ci_key_or_none(value)
        return value


class Authorization(Model):
    """Every real-time authorization we answered, with the reason (support sees these)."""

    __tablename__ = "roaming_authorizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_partners.id", ondelete="SET NULL"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    token_uid: Mapped[str] = mapped_column(String(36))
    token_type: Mapped[str] = mapped_column(String(20))
    allowed: Mapped[str] = mapped_column(String(20))  # ALLOWED, BLOCKED, EXPIRED, NO_CREDIT, NOT_ALLOWED
    reason: Mapped[str] = mapped_column(String(255))
    authorization_reference: Mapped[str | None] = mapped_column(String(36))
    location_references: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_roaming_authorizations_account_created", "account_id", "created_at"),
        # The operations overview: a partner's answers of the last 24 hours and its newest (app.roaming.network).
        Index("ix_roaming_authorizations_partner_created", "partner_id", "created_at"),
    )
