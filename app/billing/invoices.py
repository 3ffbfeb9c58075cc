"""Turning a composition into a numbered, frozen invoice; credit notes; reading invoices back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.accounts.models import Account, Role, User
from app.audit.services import Actor, record
from app.billing.composition import ComposedLine, Composition, period_bounds, vat_summary
from app.billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, LineKind, PaymentState
from app.billing.numbering import series_for, take_number
from app.billing.snapshot import SNAPSHOT_VERSION
from app.db import utcnow
from app.extensions import db
from app.payments.services import active_payment_method
from app.plans.services import billing_zone


class BillingError(ValueError):
    pass


def _buyer(account: Account) -> dict[str, Any]:
    email = db.session.scalar(select(User.email).where(User.account_id == account.id, User.role == Role.DRIVER))
    return {"customer_number": f"{account.id:08d}", "name": account.full_name, "company_name": account.company_name,
            "street": account.street, "postal_code": account.postal_code, "city": account.city,
            "country": account.country, "vat_number": account.vat_number, "email": email}


def _line_snapshot(position: int, line: ComposedLine) -> dict[str, Any]:
    return {"position": position, "kind": line.kind.value, "description": line.description,
            "quantity": str(line.quantity), "unit": line.unit, "session": line.session,
            "cpo_cost": line.cpo_cost_minor, "fees": line.fees_minor, "amount": line.amount_minor,
            "vat_rate": format(line.vat_rate.normalize(), "f"), "vat_category": line.vat_category}


def _snapshot(invoice: Invoice, account: Account, lines: list[ComposedLine], credits: Invoice | None) -> dict:
    start, end = period_bounds(invoice.period)
    zone = billing_zone()
    method = active_payment_method(account.id)
    session_fees = sum((Decimal(line.details.get("session_fee", "0")) for line in lines
                        if line.kind == LineKind.SESSION), Decimal(0))
    return {
        "version": SNAPSHOT_VERSION,
        "kind": invoice.kind.value,
        "number": invoice.number,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "period": {"month": invoice.period, "start": start.astimezone(zone).date().isoformat(),
                   "end": (end.astimezone(zone) - dt.timedelta(days=1)).date().isoformat()},
        "currency": invoice.currency,
        "language": account.language,
        "seller": dict(current_app.config["SELLER"]),
        "buyer": _buyer(account),
        "lines": [_line_snapshot(position, line) for position, line in enumerate(lines, start=1)],
        "vat": invoice.vat_breakdown,
        "totals": {"subtotal": invoice.subtotal_minor, "vat": invoice.vat_minor, "total": invoice.total_minor},
        "session_fees": {"charged": int((session_fees * 100).to_integral()), "cap": None},
        "credits_invoice": {"number": credits.number, "issue_date": credits.issue_date.isoformat()}
        if credits else None,
        "payment": {"method": method.method_type if method else None,
                    "terms_days": current_app.config["INVOICE_PAYMENT_TERMS_DAYS"], "reference": invoice.number},
    }


def _today() -> dt.date:
    return utcnow().astimezone(billing_zone()).date()


def _store_lines(invoice: Invoice, lines: list[ComposedLine]) -> None:
    for position, line in enumerate(lines, start=1):
        invoice.lines.append(InvoiceLine(
            position=position, kind=line.kind, session_charge_id=line.session_charge_id,
            description=line.description[:255], details={**line.details, "session": line.session,
                                                          "unit": line.unit, "vat_category": line.vat_category},
            quantity=line.quantity, cpo_cost_minor=line.cpo_cost_minor, fees_minor=line.fees_minor,
            amount_minor=line.amount_minor, vat_rate=line.vat_rate))


def _number_and_freeze(invoice: Invoice, account: Account, lines: list[ComposedLine],
                       credits: Invoice | None = None) -> None:
    """Assign the next number (the last step before commit: it holds the series lock) and freeze."""
    invoice.issue_date = _today()
    if invoice.kind == InvoiceKind.INVOICE:
        invoice.due_date = invoice.issue_date + dt.timedelta(days=current_app.config["INVOICE_PAYMENT_TERMS_DAYS"])
    invoice.series = series_for(invoice.kind, invoice.issue_date.year)
    invoice.sequence, invoice.number = take_number(invoice.series)
    invoice.status = InvoiceStatus.FINALIZED
    invoice.finalized_at = utcnow()
    invoice.snapshot = _snapshot(invoice, account, lines, credits)
    db.session.flush()


def finalize_composition(composition: Composition, run_id: int | None = None) -> Invoice | None:
    """Store the composition as a finalized invoice. Nothing to bill (no lines) → no invoice."""
    if not composition.lines:
        return None
    invoice = Invoice(kind=InvoiceKind.INVOICE, account_id=composition.account.id, run_id=run_id,
                      period=composition.period, currency=composition.currency,
                      subtotal_minor=composition.subtotal_minor, vat_minor=composition.vat_minor,
                      total_minor=composition.total_minor, vat_breakdown=composition.vat,
                      payment_state=PaymentState.OPEN if composition.total_minor > 0 else PaymentState.NOT_DUE)
    db.session.add(invoice)
    _store_lines(invoice, composition.lines)
    db.session.flush()
    _number_and_freeze(invoice, composition.account, composition.lines)
    return invoice


def credit_invoice(invoice: Invoice, actor: Actor, reason: str, amount_minor: int | None = None) -> Invoice:
    """A credit note against a finalized invoice: all of it, or ``amount_minor`` (excl. VAT, at the invoice's
    main VAT rate). Numbered in its own series and referencing the invoice."""
    if invoice.status != InvoiceStatus.FINALIZED or invoice.kind != InvoiceKind.INVOICE:
        raise BillingError("only a finalized invoice can be credited")
    if not reason.strip():
        raise BillingError("a credit note needs a reason")
    already = sum(-note.subtotal_minor for note in db.session.scalars(
        select(Invoice).where(Invoice.credits_invoice_id == invoice.id, Invoice.status == InvoiceStatus.FINALIZED)))
    account = db.session.get(Account, invoice.account_id)
    if amount_minor is None:
        lines = [ComposedLine(kind=LineKind.CORRECTION, description=f"Credit: {line.description}"[:255],
                              quantity=line.quantity, unit=line.details.get("unit", "item"),
                              amount_minor=-line.amount_minor, cpo_cost_minor=-line.cpo_cost_minor,
                              fees_minor=-line.fees_minor, vat_rate=line.vat_rate,
                              vat_category=line.details.get("vat_category", "S"))
                 for line in invoice.lines]
    else:
        if amount_minor <= 0:
            raise BillingError("the credited amount must be positive")
        main_rate = max(invoice.lines, key=lambda line: abs(line.amount_minor)).vat_rate
        lines = [ComposedLine(kind=LineKind.CORRECTION, description=f"Credit: {reason}"[:255],
                              quantity=Decimal(1), unit="item", amount_minor=-amount_minor, fees_minor=-amount_minor,
                              vat_rate=main_rate)]
    credited = -sum(line.amount_minor for line in lines)
    if already + credited > invoice.subtotal_minor:
        raise BillingError("the credit notes would exceed the invoice")
    vat = vat_summary(lines)
    subtotal = sum(line.amount_minor for line in lines)
    note = Invoice(kind=InvoiceKind.CREDIT_NOTE, account_id=invoice.account_id, period=invoice.period,
                   currency=invoice.currency, credits_invoice_id=invoice.id, subtotal_minor=subtotal,
                   vat_minor=sum(entry["vat"] for entry in vat), vat_breakdown=vat,
                   total_minor=subtotal + sum(entry["vat"] for entry in vat), payment_state=PaymentState.NOT_DUE)
    db.session.add(note)
    _store_lines(note, lines)
    db.session.flush()
    _number_and_freeze(note, account, lines, credits=invoice)
    record("invoice.credit_note", "invoice", invoice.id, actor=actor, reason=reason,
           details={"credit_note": note.number, "amount_minor": -note.total_minor})
    return note


def invoice_by_number(number: str) -> Invoice | None:
    return db.session.scalar(select(Invoice).where(Invoice.number == number))


def invoices_of(account_id: int) -> list[Invoice]:
    return list(db.session.scalars(
        select(Invoice).where(Invoice.account_id == account_id, Invoice.status == InvoiceStatus.FINALIZED)
        .order_by(Invoice.issue_date.desc(), Invoice.id.desc())))


def public_view(invoice: Invoice) -> dict[str, Any]:
    """The frozen snapshot plus the live payment state: what ``flask billing show`` prints."""
    return {**(invoice.snapshot or {}), "id": invoice.id, "account_id": invoice.account_id,
            "payment_state": invoice.payment_state.value,
            "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None}
