"""Credit notes: a correction of a finalized invoice, in whole or for an amount, numbered in its own series
(``CN-YYYY``) and frozen like an invoice. What happens to the money (a lower amount due, or a refund) is
collection's (:mod:`app.billing.collection.refunds`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.accounts.models import Account
from app.audit.services import Actor, record
from app.billing.invoicing.composition import ComposedLine, vat_summary
from app.billing.invoicing.errors import BillingError
from app.billing.invoicing.freezing import billing_today, freeze_reference, invoice_snapshot, line_row
from app.billing.invoicing.numbering import series_for, take_number
from app.billing.invoicing.snapshot import CREDIT_REASONS, DEFAULT_CREDIT_REASON
from app.billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, LineKind, PaymentState
from app.db import utcnow
from app.extensions import db


def _store_lines(invoice: Invoice, lines: list[ComposedLine]) -> None:
    for position, line in enumerate(lines, start=1):
        row = line_row(None, position, line)
        del row["invoice_id"]
        invoice.lines.append(InvoiceLine(**row))


def _number_and_freeze(
    invoice: Invoice,
    account: Account,
    lines: list[ComposedLine],
    credits: Invoice | None = None,
    credit_reason: str | None = None,
) -> None:
    """Assign the next number (the last step before commit: it holds the series lock) and freeze. A credit note
    is paid by nobody: its payment reference stays its number, and it gets no structured one."""
    invoice.issue_date = billing_today()
    if invoice.kind == InvoiceKind.INVOICE:
        invoice.due_date = invoice.issue_date + dt.timedelta(days=current_app.config["INVOICE_PAYMENT_TERMS_DAYS"])
    invoice.series = series_for(invoice.kind, invoice.issue_date.year)
    invoice.sequence, invoice.number = take_number(invoice.series)
    invoice.status = InvoiceStatus.FINALIZED
    invoice.finalized_at = utcnow()
    invoice.snapshot = invoice_snapshot(invoice, account, lines, credits, credit_reason)
    if invoice.kind == InvoiceKind.INVOICE:
        frozen: dict[str, Any] = {"sequence": invoice.sequence, "snapshot": invoice.snapshot}
        freeze_reference(frozen, invoice.issue_date.year)
        invoice.payment_reference = frozen["payment_reference"]
    db.session.flush()


def _correction_of(line: InvoiceLine) -> int:
    """An invoice line's correction (finance's adjustment): what its amount has beyond CPO cost and fees."""
    return line.amount_minor - line.cpo_cost_minor - line.fees_minor


def credit_invoice(
    invoice: Invoice,
    actor: Actor,
    reason: str,
    amount_minor: int | None = None,
    *,
    customer_reason: str = DEFAULT_CREDIT_REASON,
) -> Invoice:
    """A credit note against a finalized invoice: all of it, or ``amount_minor`` (excl. VAT, at the invoice's
    main VAT rate). Numbered in its own series and referencing the invoice.

    ``reason`` is finance's internal note: it goes to the audit log only. What the customer reads is
    ``customer_reason``, a code of ``snapshot.CREDIT_REASONS`` printed in their language on the credit note."""
    if invoice.status != InvoiceStatus.FINALIZED or invoice.kind != InvoiceKind.INVOICE:
        raise BillingError(_l("Only a finalized invoice can be credited."))
    if not reason.strip():
        raise BillingError(_l("A credit note needs a reason."))
    if customer_reason not in CREDIT_REASONS:
        raise BillingError(_l("Unknown reason for the customer: %(reason)r.", reason=customer_reason))
    already = sum(
        -note.subtotal_minor
        for note in db.session.scalars(
            select(Invoice).where(Invoice.credits_invoice_id == invoice.id, Invoice.status == InvoiceStatus.FINALIZED)
        )
    )
    account = db.session.get_one(Account, invoice.account_id)
    if amount_minor is None:
        # The credited lines as they were (location and city, or the plan): the credit note says it credits them.
        lines = [
            ComposedLine(
                kind=LineKind.CORRECTION,
                description=line.description,
                quantity=line.quantity,
                unit=line.details.get("unit", "item"),
                amount_minor=-line.amount_minor,
                cpo_cost_minor=-line.cpo_cost_minor,
                fees_minor=-line.fees_minor,
                correction_minor=-_correction_of(line),
                correction_reason=line.details.get("correction_reason") if _correction_of(line) else None,
                vat_rate=line.vat_rate,
                vat_category=line.details.get("vat_category", "S"),
                vat_country=line.details.get("vat_country", ""),
                session=line.details.get("session"),
            )
            for line in invoice.lines
        ]
    else:
        if amount_minor <= 0:
            raise BillingError(_l("The credited amount must be positive."))
        main = max(invoice.lines, key=lambda line: abs(line.amount_minor))
        lines = [
            ComposedLine(
                kind=LineKind.CORRECTION,
                # The customer's reason in English (the e-invoices' item name); the PDF prints it translated.
                description=CREDIT_REASONS[customer_reason],
                quantity=Decimal(1),
                unit="item",
                amount_minor=-amount_minor,
                fees_minor=-amount_minor,
                vat_rate=main.vat_rate,
                vat_category=main.details.get("vat_category", "S"),
                vat_country=main.details.get("vat_country", ""),
            )
        ]
    credited = -sum(line.amount_minor for line in lines)
    if already + credited > invoice.subtotal_minor:
        raise BillingError(_l("The credit notes would exceed the invoice."))
    vat = vat_summary(lines)
    subtotal = sum(line.amount_minor for line in lines)
    note = Invoice(
        kind=InvoiceKind.CREDIT_NOTE,
        account_id=invoice.account_id,
        period=invoice.period,
        currency=invoice.currency,
        credits_invoice_id=invoice.id,
        subtotal_minor=subtotal,
        vat_minor=sum(entry["vat"] for entry in vat),
        vat_breakdown=vat,
        total_minor=subtotal + sum(entry["vat"] for entry in vat),
        payment_state=PaymentState.NOT_DUE,
    )
    db.session.add(note)
    _store_lines(note, lines)
    db.session.flush()
    _number_and_freeze(note, account, lines, credits=invoice, credit_reason=customer_reason)
    record(
        "invoice.credit_note",
        "invoice",
        invoice.id,
        actor=actor,
        reason=reason,
        details={"credit_note": note.number, "amount_minor": -note.total_minor, "customer_reason": customer_reason},
    )
    return note
