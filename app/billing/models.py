"""Invoices, their lines and frozen snapshots, numbering series, runs, held sessions, payments, webhooks.

Amounts on invoices are integer minor units (cents) with a currency; a line is rounded half-up once, VAT is
computed per rate on the subtotal of that rate and rounded once, the total is the sum of rounded figures.

An invoice is *frozen* when finalized: its number is assigned and ``snapshot`` holds everything printed on it
(seller, buyer, lines, VAT, totals, language). PDFs, Factur-X, UBL and the ``flask billing show`` output are
made from that snapshot only, never from live rows, so an invoice reads the same forever.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import str_enum, utcnow
from app.extensions import Model


class InvoiceKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"  # computed by a run, no number yet, can be recomputed
    FINALIZED = "finalized"  # numbered and frozen
    VOID = "void"  # a draft dropped before finalization (never numbered)


class PaymentState(enum.StrEnum):
    NOT_DUE = "not_due"  # zero or negative total, or a credit note
    OPEN = "open"  # waiting for collection
    PROCESSING = "processing"  # SEPA debit under way
    PAID = "paid"
    FAILED = "failed"  # last attempt failed; dunning schedules the next
    UNCOLLECTIBLE = "uncollectible"  # dunning exhausted: cards blocked until paid
    REFUNDED = "refunded"


class PaymentReview(enum.StrEnum):
    """Why finance must look at a payment Stripe reported as succeeded (it did not pay the invoice as asked)."""

    UNDERPAID = "underpaid"  # less than was due: counted, the rest stays due (dunning goes on)
    OVERPAID = "overpaid"  # more than was due (or paid twice): the surplus is to be given back
    CURRENCY_MISMATCH = "currency_mismatch"  # not in the invoice's currency: not counted, the invoice stays unpaid


class NumberSeries(Model):
    """A gapless invoice number series (e.g. ``INV-2026``). ``next_number`` is taken inside the finalizing
    transaction with an UPDATE, which locks the row (PostgreSQL) or the database (SQLite) until commit, so a
    number is consumed only if the invoice that got it is committed."""

    __tablename__ = "billing_number_series"

    series: Mapped[str] = mapped_column(String(20), primary_key=True)
    next_number: Mapped[int] = mapped_column(default=1)


class Invoice(Model):
    __tablename__ = "billing_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[InvoiceKind] = mapped_column(str_enum(InvoiceKind), default=InvoiceKind.INVOICE)
    status: Mapped[InvoiceStatus] = mapped_column(str_enum(InvoiceStatus), default=InvoiceStatus.DRAFT)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_runs.id", ondelete="SET NULL"), index=True)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM supplied
    currency: Mapped[str] = mapped_column(String(3))
    series: Mapped[str | None] = mapped_column(String(20))
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    sequence: Mapped[int | None] = mapped_column(Integer)
    # The structured payment reference (compact: Belgian OGM digits or an ISO 11649 RF reference) the customer
    # quotes when paying by transfer, frozen at finalization (``invoicing.numbering.invoice_payment_reference``);
    # finance matches a bank transfer by it. None for credit notes and for invoices issued before it existed.
    payment_reference: Mapped[str | None] = mapped_column(String(25))
    issue_date: Mapped[dt.date | None]
    due_date: Mapped[dt.date | None]
    credits_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoices.id", ondelete="RESTRICT"))
    subtotal_minor: Mapped[int] = mapped_column(default=0)
    vat_minor: Mapped[int] = mapped_column(default=0)
    total_minor: Mapped[int] = mapped_column(default=0)
    vat_breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{rate, base, vat}]
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    payment_state: Mapped[PaymentState] = mapped_column(str_enum(PaymentState), default=PaymentState.OPEN)
    paid_at: Mapped[dt.datetime | None]
    # Loaded only when read: lists of invoices (portal, back office, runs) never need the file itself.
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    pdf_rendered_at: Mapped[dt.datetime | None]
    emailed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finalized_at: Mapped[dt.datetime | None]

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLine.position"
    )

    __table_args__ = (
        # One invoice per account, period and currency (credit notes are not bound by it).
        Index(
            "uq_billing_invoices_account_period",
            "account_id",
            "period",
            "currency",
            unique=True,
            sqlite_where=text("kind = 'invoice' AND status <> 'void'"),
            postgresql_where=text("kind = 'invoice' AND status <> 'void'"),
        ),
        UniqueConstraint("series", "sequence"),
        Index("ix_billing_invoices_account", "account_id", "created_at"),
        Index("ix_billing_invoices_payment", "payment_state"),
        Index("ix_billing_invoices_payment_reference", "payment_reference", unique=True),
    )


class LineKind(enum.StrEnum):
    SUBSCRIPTION = "subscription"
    SESSION = "session"
    CORRECTION = "correction"
    CREDIT = "credit"  # a credit CDR from a CPO


class InvoiceLine(Model):
    __tablename__ = "billing_invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    kind: Mapped[LineKind] = mapped_column(str_enum(LineKind))
    # A session is billed once: the unique constraint makes a second invoice line for it impossible.
    session_charge_id: Mapped[int | None] = mapped_column(
        ForeignKey("rating_session_charges.id", ondelete="RESTRICT"), unique=True
    )
    description: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(1))
    cpo_cost_minor: Mapped[int] = mapped_column(default=0)
    fees_minor: Mapped[int] = mapped_column(default=0)
    amount_minor: Mapped[int]  # excl. VAT, rounded once
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(6, 3))

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class RunStatus(enum.StrEnum):
    PREVIEW = "preview"
    APPROVED = "approved"
    FINALIZING = "finalizing"
    FINALIZED = "finalized"
    CANCELLED = "cancelled"


class InvoiceRun(Model):
    __tablename__ = "billing_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(7))
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus), default=RunStatus.PREVIEW)
    preview: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    accounts_total: Mapped[int] = mapped_column(default=0)
    accounts_done: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(255))
    approved_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    __table_args__ = (
        # One live run per period; a cancelled one may be followed by a new one.
        Index(
            "uq_billing_runs_period",
            "period",
            unique=True,
            sqlite_where=text("status <> 'cancelled'"),
            postgresql_where=text("status <> 'cancelled'"),
        ),
    )


class RunItem(Model):
    """One account of a run: the unit of work (one transaction) that a crash can interrupt and a rerun resumes."""

    __tablename__ = "billing_run_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("billing_runs.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | done | failed | skipped
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoices.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "account_id"),
        Index("ix_billing_run_items_status", "run_id", "status"),
    )


class HoldStatus(enum.StrEnum):
    HELD = "held"
    RELEASED = "released"
    ADJUSTED = "adjusted"
    WRITTEN_OFF = "written_off"


class SessionHold(Model):
    """A session the outlier guard held for finance instead of billing it."""

    __tablename__ = "billing_session_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_charge_id: Mapped[int] = mapped_column(
        ForeignKey("rating_session_charges.id", ondelete="CASCADE"), unique=True
    )
    reasons: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[HoldStatus] = mapped_column(str_enum(HoldStatus), default=HoldStatus.HELD, index=True)
    adjusted_incl_vat: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None]


class Payment(Model):
    """One collection attempt of an invoice through a Stripe PaymentIntent (or a refund)."""

    __tablename__ = "billing_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoices.id", ondelete="RESTRICT"), index=True)
    attempt: Mapped[int] = mapped_column(default=1)
    kind: Mapped[str] = mapped_column(String(20), default="charge")  # charge | refund
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(30))  # Stripe's: processing, succeeded, requires_payment_method…
    failure_message: Mapped[str | None] = mapped_column(Text)
    # What Stripe says it received (set when the attempt succeeded; ``None`` on older rows: the amount asked).
    amount_received_minor: Mapped[int | None]
    received_currency: Mapped[str | None] = mapped_column(String(3))
    # Set when the money received is not what was due: finance must look at it (the back office lists them).
    review: Mapped[PaymentReview | None] = mapped_column(str_enum(PaymentReview))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("invoice_id", "kind", "attempt"),
        # The finance list of payments to review reads only the few flagged rows.
        Index(
            "ix_billing_payments_review",
            "review",
            postgresql_where=text("review IS NOT NULL"),
            sqlite_where=text("review IS NOT NULL"),
        ),
    )


class CollectionOutage(Model):
    """A collection attempt that met a Stripe outage (unreachable, no answer in time, the retry refused): whether
    Stripe charged is unknown. Until it is resolved every collection of the invoice resumes this attempt (same
    number, same idempotency key) and first looks for the PaymentIntent the attempt may have created (through its
    metadata), so a retry never charges twice, also once Stripe has forgotten the key (24 hours). The resume job
    (``billing.resume_collection``) tries it again by itself at ``next_try_at``, with growing delays; finance sees
    it on the run page. ``app.billing.collection.outages`` keeps it."""

    __tablename__ = "billing_collection_outages"

    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoices.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    since: Mapped[dt.datetime]  # the first try of the attempt that met the outage
    last_failed_at: Mapped[dt.datetime]
    tries: Mapped[int] = mapped_column(default=1)  # tries of the attempt that met it
    reason: Mapped[str] = mapped_column(String(500))  # why the last one failed, in one line
    # When the resume job has something to do: try again (unresolved), or finish what the outage held up
    # (resolved: a credit note issued meanwhile refunded); None when nothing is left.
    next_try_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    resolved_at: Mapped[dt.datetime | None]  # Stripe's answer for the attempt is recorded (its Payment row)


class Dunning(Model):
    """Where an unpaid invoice stands in the reminder schedule (3, 7, 14 days, then cards blocked)."""

    __tablename__ = "billing_dunning"

    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoices.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[int] = mapped_column(default=0)  # reminders sent
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    cards_blocked_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StripeEvent(Model):
    """Webhook events already handled (Stripe retries; an event id is processed once).

    ``ignored_reason`` is set for a signed event we could not use (fields missing or of the wrong type, an unknown
    PaymentIntent or invoice, a type we do not handle): it was acknowledged and changed nothing."""

    __tablename__ = "billing_stripe_events"
    # The reason of events of a type we do not handle: routine, not listed for staff.
    TYPE_NOT_HANDLED = "event type not handled"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ignored_reason: Mapped[str | None] = mapped_column(String(255))
