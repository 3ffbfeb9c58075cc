"""Priced sessions, reconciliation findings and the CDRs that could not be priced (with why)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.extensions import Model

AMOUNT = Numeric(14, 4)


class SessionCharge(Model):
    """What one CDR costs us (CPO part) and what we charge the driver for it, with the terms used.

    Amounts keep 4 decimals; the invoice rounds each line to cents. One row per CDR (a credit CDR gets its own
    row with negative amounts).
    """

    __tablename__ = "rating_session_charges"

    id: Mapped[int] = mapped_column(primary_key=True)
    cdr_id: Mapped[int] = mapped_column(ForeignKey("roaming_cdrs.id", ondelete="RESTRICT"), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"))
    tariff_version_id: Mapped[int | None] = mapped_column(ForeignKey("roaming_tariff_versions.id", ondelete="RESTRICT"))
    # frozen_tariff | cdr_tariffs | cdr_total_cost: which source priced the CPO part (shown on the invoice)
    tariff_source: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(3))
    currency: Mapped[str] = mapped_column(String(3))
    kwh: Mapped[Decimal] = mapped_column(AMOUNT)
    cpo_cost_excl_vat: Mapped[Decimal] = mapped_column(AMOUNT)
    cpo_cost_incl_vat: Mapped[Decimal | None] = mapped_column(AMOUNT)
    markup_percent_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    markup_per_kwh_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    session_fee: Mapped[Decimal] = mapped_column(AMOUNT)
    driver_excl_vat: Mapped[Decimal] = mapped_column(AMOUNT)
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    vat_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    driver_incl_vat: Mapped[Decimal] = mapped_column(AMOUNT)
    margin: Mapped[Decimal] = mapped_column(AMOUNT)
    # The price promise for this session's own kWh and duration (incl. VAT, our fees included): what the
    # tariff in force at the connector when the session started gives. None when we know no such tariff.
    # The invoice run holds a session whose billed price is far from it (``billing.invoicing.outliers``).
    estimate_incl_vat: Mapped[Decimal | None] = mapped_column(AMOUNT)
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)
    # How the CPO part was computed where the CDR did not fit OCPI's shape: one note per charging period counted
    # from elsewhere than it said (``app.pricing.periods.PeriodNote.to_json_dict``: period, kind, started,
    # counted_from, reference, text). None when there is nothing to say. Shown where support and the driver
    # look at the session's price.
    pricing_notes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    priced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_rating_session_charges_account_priced", "account_id", "priced_at"),)


class ReconciliationFinding(Model):
    """The CPO's ``total_cost`` differs from our own calculation by more than the tolerance."""

    __tablename__ = "rating_reconciliation_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    cdr_id: Mapped[int] = mapped_column(ForeignKey("roaming_cdrs.id", ondelete="CASCADE"), unique=True)
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM of the session start (billing time zone)
    currency: Mapped[str] = mapped_column(String(3))
    cpo_total_excl_vat: Mapped[Decimal] = mapped_column(AMOUNT)
    our_total_excl_vat: Mapped[Decimal] = mapped_column(AMOUNT)
    difference: Mapped[Decimal] = mapped_column(AMOUNT)
    cpo_breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)
    our_breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | accepted | disputed
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_rating_findings_party_month", "country_code", "party_id", "month"),)


class RatingProblem(Model):
    """A CDR that could not be rated, and why (the latest reason): finance reads these, ``flask rating
    rate-pending`` and ``flask billing uninvoiced`` print them. Written by every attempt that fails (on arrival,
    the periodic ``rating.rate_pending``, a run's preview); a problem whose CDR has a charge since is resolved
    (listings ignore it, ``rate_pending`` deletes it)."""

    __tablename__ = "rating_problems"

    id: Mapped[int] = mapped_column(primary_key=True)
    cdr_id: Mapped[int] = mapped_column(ForeignKey("roaming_cdrs.id", ondelete="CASCADE"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    first_failed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_failed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
