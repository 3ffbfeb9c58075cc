"""Turning compositions into numbered, frozen invoices; reading invoices back.

The entry point of invoicing for the rest of billing and the doors: besides finalizing and reading, it offers
the credit notes (:mod:`app.billing.invoicing.credit_notes`), the buyer's email an invoice names
(:mod:`app.billing.invoicing.freezing`, where the snapshot is built) and :class:`BillingError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, select

from app.billing.invoicing.composition import Composition
from app.billing.invoicing.credit_notes import credit_invoice
from app.billing.invoicing.errors import BillingError
from app.billing.invoicing.freezing import (
    billing_today,
    build_snapshot,
    buyer_emails,
    freeze_reference,
    line_row,
    payment_terms,
    period_snapshot,
    session_fee_caps,
)
from app.billing.invoicing.numbering import number_text, series_for, take_numbers
from app.billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, PaymentState
from app.db import utcnow
from app.db_bulk import insert_returning_ids, insert_rows
from app.extensions import db

__all__ = [
    "BillingError",
    "buyer_emails",
    "credit_invoice",
    "finalize_composition",
    "finalize_compositions",
    "invoice_by_number",
    "invoices_of",
    "public_view",
]


def finalize_compositions(compositions: Sequence[Composition], run_id: int | None = None) -> dict[int, int]:
    """Store many compositions as finalized invoices in the current transaction: account id → invoice id.
    Nothing to bill (no lines) → no invoice (the account is absent from the result).

    Set-based on purpose (the monthly run calls it per chunk of accounts): buyer emails and payment methods are
    read in one query each, the invoices and their lines are written with one multi-row INSERT each (Core, no
    unit of work), and the numbers of the whole batch are taken with one ``UPDATE ... RETURNING`` on the series.
    Everything except the numbers is prepared *before* that UPDATE, because it locks the series until the
    transaction ends: concurrent workers queue only for the inserts. Numbers stay gapless: they are consumed in
    the same transaction as the invoices that carry them, so a rollback gives all of them back. On PostgreSQL
    the rows are streamed with COPY (``billing.bulk``), which keeps that locked stretch short.
    """
    billable = [composition for composition in compositions if composition.lines]
    if not billable:
        return {}
    account_ids = [composition.account.id for composition in billable]
    emails = buyer_emails(account_ids)
    payments = payment_terms(account_ids)
    caps_by_period: dict[str, dict[int, Decimal | None]] = {}
    issue_date = billing_today()
    due_date = issue_date + dt.timedelta(days=current_app.config["INVOICE_PAYMENT_TERMS_DAYS"])
    series = series_for(InvoiceKind.INVOICE, issue_date.year)
    finalized_at = utcnow()
    periods: dict[str, dict[str, str]] = {}
    invoices, lines = [], []
    for composition in billable:
        account, vat = composition.account, composition.vat
        subtotal = sum(line.amount_minor for line in composition.lines)
        vat_minor = sum(entry["vat"] for entry in vat)
        totals = {"subtotal": subtotal, "vat": vat_minor, "total": subtotal + vat_minor}
        if composition.period not in periods:
            periods[composition.period] = period_snapshot(composition.period)
            caps_by_period[composition.period] = session_fee_caps(account_ids, composition.period)
        snapshot = build_snapshot(
            kind=InvoiceKind.INVOICE,
            number=None,
            issue_date=issue_date,
            due_date=due_date,
            period=periods[composition.period],
            currency=composition.currency,
            account=account,
            email=emails.get(account.id),
            lines=composition.lines,
            vat=vat,
            totals=totals,
            credits=None,
            payment=payments.get(account.id),
            session_fee_cap=caps_by_period[composition.period].get(account.id),
        )
        invoices.append(
            {
                "kind": InvoiceKind.INVOICE,
                "status": InvoiceStatus.FINALIZED,
                "account_id": account.id,
                "run_id": run_id,
                "period": composition.period,
                "currency": composition.currency,
                "series": series,
                "issue_date": issue_date,
                "due_date": due_date,
                "subtotal_minor": subtotal,
                "vat_minor": vat_minor,
                "total_minor": totals["total"],
                "vat_breakdown": vat,
                "snapshot": snapshot,
                "payment_state": PaymentState.OPEN if totals["total"] > 0 else PaymentState.NOT_DUE,
                "created_at": finalized_at,
                "finalized_at": finalized_at,
            }
        )
        lines.append([line_row(None, position, line) for position, line in enumerate(composition.lines, 1)])

    first = take_numbers(series, len(invoices))  # the series stays locked from here to the commit
    for offset, row in enumerate(invoices):
        row["sequence"] = first + offset
        row["number"] = row["snapshot"]["number"] = number_text(series, first + offset)
        freeze_reference(row, issue_date.year)
    # A mapped class with a __tablename__ maps a Table (the declarative base types __table__ as a FromClause).
    invoice_ids = insert_returning_ids(cast(Table, Invoice.__table__), invoices)
    line_rows = []
    for invoice_id, rows in zip(invoice_ids, lines, strict=True):
        for row in rows:
            row["invoice_id"] = invoice_id
            line_rows.append(row)
    insert_rows(cast(Table, InvoiceLine.__table__), line_rows)
    return dict(zip(account_ids, invoice_ids, strict=True))


def finalize_composition(composition: Composition, run_id: int | None = None) -> Invoice | None:
    """Store one composition as a finalized invoice. Nothing to bill (no lines) → no invoice."""
    invoice_id = finalize_compositions([composition], run_id).get(composition.account.id)
    return db.session.get(Invoice, invoice_id) if invoice_id is not None else None


def invoice_by_number(number: str) -> Invoice | None:
    return db.session.scalar(select(Invoice).where(Invoice.number == number))


def invoices_of(account_id: int, limit: int | None = None) -> list[Invoice]:
    """The account's finalized invoices and credit notes, newest first (all of them, or the latest ``limit``)."""
    query = (
        select(Invoice)
        .where(Invoice.account_id == account_id, Invoice.status == InvoiceStatus.FINALIZED)
        .order_by(Invoice.issue_date.desc(), Invoice.id.desc())
    )
    return list(db.session.scalars(query.limit(limit) if limit else query))


def public_view(invoice: Invoice) -> dict[str, Any]:
    """The frozen snapshot plus the live payment state: what ``flask billing show`` prints."""
    return {
        **(invoice.snapshot or {}),
        "id": invoice.id,
        "account_id": invoice.account_id,
        "payment_state": invoice.payment_state.value,
        "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None,
    }
