"""Turning a composition into a numbered, frozen invoice; credit notes; reading invoices back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Table, select

from app.accounts.models import Account, Role, User
from app.audit.services import Actor, record
from app.billing.invoicing.composition import ComposedLine, Composition, period_bounds, vat_summary
from app.billing.invoicing.numbering import (
    invoice_payment_reference,
    number_text,
    printed_reference,
    series_for,
    take_number,
    take_numbers,
)
from app.billing.invoicing.snapshot import CREDIT_REASONS, DEFAULT_CREDIT_REASON, SNAPSHOT_VERSION
from app.billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, LineKind, PaymentState
from app.db import utcnow
from app.db_bulk import insert_returning_ids, insert_rows
from app.extensions import db
from app.payments.models import PaymentMethod, PaymentMethodStatus
from app.plans.services import billing_zone, session_fee_caps_at


class BillingError(ValueError):
    pass


def _buyer(account: Account, email: str | None) -> dict[str, Any]:
    return {
        "customer_number": f"{account.id:08d}",
        "name": account.full_name,
        "company_name": account.company_name,
        "street": account.street,
        "postal_code": account.postal_code,
        "city": account.city,
        "country": account.country,
        "vat_number": account.vat_number,
        "email": email,
    }


def buyer_emails(account_ids: Iterable[int]) -> dict[int, str]:
    """The email the invoice names for each account: its confirmed notification address (where the invoice is
    mailed, ``accounts.notices``), else its first driver user's, in two queries."""
    account_ids = list(account_ids)
    emails: dict[int, str] = {
        account_id: address
        for account_id, address in db.session.execute(
            select(Account.id, Account.notification_email).where(
                Account.id.in_(account_ids), Account.notification_email.is_not(None)
            )
        )
        if address
    }
    for account_id, email in db.session.execute(
        select(User.account_id, User.email)
        .where(User.account_id.in_(list(account_ids)), User.role == Role.DRIVER)
        .order_by(User.id)
    ):
        assert account_id is not None  # selected by account_id IN (...)
        emails.setdefault(account_id, email)
    return emails


@dataclass(frozen=True)
class PaymentTerms:
    """What the invoice says about payment: the active method's type and, for SEPA, the mandate reference."""

    method: str | None = None
    mandate_reference: str | None = None


def payment_terms(account_ids: Iterable[int]) -> dict[int, PaymentTerms]:
    """The active payment method of each account (accounts without one are absent), in one query."""
    return {
        account_id: PaymentTerms(method_type, mandate if method_type == "sepa_debit" else None)
        for account_id, method_type, mandate in db.session.execute(
            select(PaymentMethod.account_id, PaymentMethod.method_type, PaymentMethod.mandate_reference).where(
                PaymentMethod.account_id.in_(list(account_ids)), PaymentMethod.status == PaymentMethodStatus.ACTIVE
            )
        )
    }


_KIND_TEXT = {kind: kind.value for kind in LineKind}  # a dict look-up: a million lines a month


def _line_snapshot(position: int, line: ComposedLine) -> dict[str, Any]:
    snapshot = {
        "position": position,
        "kind": _KIND_TEXT[line.kind],
        "description": line.description,
        "quantity": str(line.quantity),
        "unit": line.unit,
        "session": line.session,
        "cpo_cost": line.cpo_cost_minor,
        "fees": line.fees_minor,
        "amount": line.amount_minor,
        "vat_rate": format(line.vat_rate.normalize(), "f"),
        "vat_category": line.vat_category,
        "vat_country": line.vat_country,
    }
    if line.correction_minor:
        snapshot["correction"] = line.correction_minor
        snapshot["correction_reason"] = line.correction_reason
    return snapshot


def _period_snapshot(period: str) -> dict[str, str]:
    start, end = period_bounds(period)
    zone = billing_zone()
    return {
        "month": period,
        "start": start.astimezone(zone).date().isoformat(),
        "end": (end.astimezone(zone) - dt.timedelta(days=1)).date().isoformat(),
    }


def _build_snapshot(
    *,
    kind: InvoiceKind,
    number: str | None,
    issue_date: dt.date,
    due_date: dt.date | None,
    period: dict[str, str],
    currency: str,
    account: Account,
    email: str | None,
    lines: list[ComposedLine],
    vat: list[dict[str, Any]],
    totals: dict[str, int],
    credits: Invoice | None,
    payment: PaymentTerms | None,
    session_fee_cap: Decimal | None = None,
    credit_reason: str | None = None,
) -> dict[str, Any]:
    """The frozen snapshot (layout: ``app.billing.invoicing.snapshot``).

    ``session_fee_cap``: the monthly cap on session fees of the account's plan at the end of the period (printed
    next to the fees charged, so the driver sees the cap at work).

    ``payment.mandate_reference`` is the SEPA Direct Debit mandate the invoice will be collected under (None for
    a card or no method): Peppol BIS 3.0 rule R061 requires it with payment means 59, and the customer must be
    told under which mandate they are debited (SEPA rulebook pre-notification).

    ``payment.reference`` is the invoice number until the number is taken; then the invoice's structured payment
    reference (:func:`_freeze_reference`). ``credit_reason`` is a credit note's reason for the customer (a code
    of ``snapshot.CREDIT_REASONS``)."""
    session_fees = sum((line.session_fee for line in lines if line.kind == LineKind.SESSION), Decimal(0))
    payment = payment or PaymentTerms()
    credited: dict[str, Any] | None = None
    if credits:
        assert credits.issue_date is not None  # only a finalized invoice is credited, and it is dated
        credited = {"number": credits.number, "issue_date": credits.issue_date.isoformat()}
    return {
        "version": SNAPSHOT_VERSION,
        "kind": kind.value,
        "number": number,
        "issue_date": issue_date.isoformat(),
        "due_date": due_date.isoformat() if due_date else None,
        "period": period,
        "currency": currency,
        "language": account.language,
        "seller": dict(current_app.config["SELLER"]),
        "buyer": _buyer(account, email),
        "lines": [_line_snapshot(position, line) for position, line in enumerate(lines, start=1)],
        "vat": vat,
        "totals": totals,
        "session_fees": {
            "charged": int((session_fees * 100).to_integral()),
            "cap": int((session_fee_cap * 100).to_integral()) if session_fee_cap is not None else None,
        },
        "credits_invoice": credited,
        **({"credit_reason": credit_reason} if credit_reason else {}),
        "payment": {
            "method": payment.method,
            "mandate_reference": payment.mandate_reference,
            "terms_days": current_app.config["INVOICE_PAYMENT_TERMS_DAYS"],
            "reference": number,
        },
    }


def _snapshot(
    invoice: Invoice,
    account: Account,
    lines: list[ComposedLine],
    credits: Invoice | None,
    credit_reason: str | None = None,
) -> dict[str, Any]:
    assert invoice.issue_date is not None  # dated by _number_and_freeze, which freezes the snapshot
    return _build_snapshot(
        kind=invoice.kind,
        number=invoice.number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        period=_period_snapshot(invoice.period),
        currency=invoice.currency,
        account=account,
        email=buyer_emails([account.id]).get(account.id),
        lines=lines,
        vat=invoice.vat_breakdown,
        totals={"subtotal": invoice.subtotal_minor, "vat": invoice.vat_minor, "total": invoice.total_minor},
        credits=credits,
        payment=payment_terms([account.id]).get(account.id),
        session_fee_cap=_session_fee_caps([account.id], invoice.period).get(account.id)
        if invoice.kind == InvoiceKind.INVOICE
        else None,
        credit_reason=credit_reason,
    )


def _session_fee_caps(account_ids: list[int], period: str) -> dict[int, Decimal | None]:
    _start, end = period_bounds(period)
    return session_fee_caps_at(account_ids, end - dt.timedelta(microseconds=1))


def _today() -> dt.date:
    return utcnow().astimezone(billing_zone()).date()


def _line_row(invoice_id: int | None, position: int, line: ComposedLine) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "position": position,
        "kind": line.kind,
        "session_charge_id": line.session_charge_id,
        "description": line.description[:255],
        "details": {
            **line.details,
            "session": line.session,
            "unit": line.unit,
            "vat_category": line.vat_category,
            "vat_country": line.vat_country,
            **({"correction_reason": line.correction_reason} if line.correction_reason else {}),
        },
        "quantity": line.quantity,
        "cpo_cost_minor": line.cpo_cost_minor,
        "fees_minor": line.fees_minor,
        "amount_minor": line.amount_minor,
        "vat_rate": line.vat_rate,
    }


def _store_lines(invoice: Invoice, lines: list[ComposedLine]) -> None:
    for position, line in enumerate(lines, start=1):
        row = _line_row(None, position, line)
        del row["invoice_id"]
        invoice.lines.append(InvoiceLine(**row))


def _freeze_reference(row: dict[str, Any], year: int) -> None:
    """Give a numbered invoice row its structured payment reference (column compact, snapshot as printed)."""
    snapshot = row["snapshot"]
    compact = invoice_payment_reference(year, row["sequence"], snapshot["seller"]["country"])
    row["payment_reference"] = compact
    snapshot["payment"]["reference"] = printed_reference(compact)


def _number_and_freeze(
    invoice: Invoice,
    account: Account,
    lines: list[ComposedLine],
    credits: Invoice | None = None,
    credit_reason: str | None = None,
) -> None:
    """Assign the next number (the last step before commit: it holds the series lock) and freeze. A credit note
    is paid by nobody: its payment reference stays its number, and it gets no structured one."""
    invoice.issue_date = _today()
    if invoice.kind == InvoiceKind.INVOICE:
        invoice.due_date = invoice.issue_date + dt.timedelta(days=current_app.config["INVOICE_PAYMENT_TERMS_DAYS"])
    invoice.series = series_for(invoice.kind, invoice.issue_date.year)
    invoice.sequence, invoice.number = take_number(invoice.series)
    invoice.status = InvoiceStatus.FINALIZED
    invoice.finalized_at = utcnow()
    invoice.snapshot = _snapshot(invoice, account, lines, credits, credit_reason)
    if invoice.kind == InvoiceKind.INVOICE:
        frozen: dict[str, Any] = {"sequence": invoice.sequence, "snapshot": invoice.snapshot}
        _freeze_reference(frozen, invoice.issue_date.year)
        invoice.payment_reference = frozen["payment_reference"]
    db.session.flush()


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
    issue_date = _today()
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
            periods[composition.period] = _period_snapshot(composition.period)
            caps_by_period[composition.period] = _session_fee_caps(account_ids, composition.period)
        snapshot = _build_snapshot(
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
        lines.append([_line_row(None, position, line) for position, line in enumerate(composition.lines, 1)])

    first = take_numbers(series, len(invoices))  # the series stays locked from here to the commit
    for offset, row in enumerate(invoices):
        row["sequence"] = first + offset
        row["number"] = row["snapshot"]["number"] = number_text(series, first + offset)
        _freeze_reference(row, issue_date.year)
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
