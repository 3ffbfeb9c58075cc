"""What a finalized invoice freezes: its snapshot (buyer, payment terms, period, lines, totals; the layout is
``app.billing.invoicing.snapshot``), the rows of its lines, its issue date and its structured payment reference.

Read for many accounts at once where the monthly run needs it (:func:`buyer_emails`, :func:`payment_terms`,
:func:`session_fee_caps`: one query each for a whole batch)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.accounts.models import Account, Role, User
from app.billing.invoicing.composition import ComposedLine, period_bounds
from app.billing.invoicing.numbering import invoice_payment_reference, printed_reference
from app.billing.invoicing.snapshot import SNAPSHOT_VERSION
from app.billing.models import Invoice, InvoiceKind, LineKind
from app.db import utcnow
from app.extensions import db
from app.payments.models import PaymentMethod, PaymentMethodStatus
from app.plans.services import billing_zone, session_fee_caps_at


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


def period_snapshot(period: str) -> dict[str, str]:
    start, end = period_bounds(period)
    zone = billing_zone()
    return {
        "month": period,
        "start": start.astimezone(zone).date().isoformat(),
        "end": (end.astimezone(zone) - dt.timedelta(days=1)).date().isoformat(),
    }


def build_snapshot(
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
    reference (:func:`freeze_reference`). ``credit_reason`` is a credit note's reason for the customer (a code
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


def invoice_snapshot(
    invoice: Invoice,
    account: Account,
    lines: list[ComposedLine],
    credits: Invoice | None,
    credit_reason: str | None = None,
) -> dict[str, Any]:
    """The snapshot of one invoice built through the ORM (a credit note), dated and numbered before."""
    assert invoice.issue_date is not None  # dated by credit_notes._number_and_freeze, which freezes the snapshot
    return build_snapshot(
        kind=invoice.kind,
        number=invoice.number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        period=period_snapshot(invoice.period),
        currency=invoice.currency,
        account=account,
        email=buyer_emails([account.id]).get(account.id),
        lines=lines,
        vat=invoice.vat_breakdown,
        totals={"subtotal": invoice.subtotal_minor, "vat": invoice.vat_minor, "total": invoice.total_minor},
        credits=credits,
        payment=payment_terms([account.id]).get(account.id),
        session_fee_cap=session_fee_caps([account.id], invoice.period).get(account.id)
        if invoice.kind == InvoiceKind.INVOICE
        else None,
        credit_reason=credit_reason,
    )


def session_fee_caps(account_ids: list[int], period: str) -> dict[int, Decimal | None]:
    """The monthly cap on session fees of each account's plan at the end of the period."""
    _start, end = period_bounds(period)
    return session_fee_caps_at(account_ids, end - dt.timedelta(microseconds=1))


def billing_today() -> dt.date:
    """Today in the seller's time zone (``BILLING_TIMEZONE``): an invoice's issue date."""
    return utcnow().astimezone(billing_zone()).date()


def line_row(invoice_id: int | None, position: int, line: ComposedLine) -> dict[str, Any]:
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


def freeze_reference(row: dict[str, Any], year: int) -> None:
    """Give a numbered invoice row its structured payment reference (column compact, snapshot as printed)."""
    snapshot = row["snapshot"]
    compact = invoice_payment_reference(year, row["sequence"], snapshot["seller"]["country"])
    row["payment_reference"] = compact
    snapshot["payment"]["reference"] = printed_reference(compact)
