"""Exports for accounting: invoices, invoice lines, VAT per rate, and the margin per CPO and month; and finance's
invoice search and list of failed payments.

Everything here runs on the whole book (millions of rows): sums are computed by the database (``GROUP BY``),
row exports stream from a server-side cursor (``yield_per``) straight into the CSV response. Amounts in the
CSV files are decimal strings in major units with a dot (``-12.34``), the form spreadsheets and accounting
imports read regardless of the user's locale; the currency is a column.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Integer, Numeric, Select, case, cast, func, literal, select
from sqlalchemy.orm import aliased

from app.accounts.models import Account
from app.billing.invoicing.composition import period_bounds
from app.billing.models import (
    HoldStatus,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    SessionHold,
)
from app.charging.models import Cdr
from app.csv_export import csv_writer
from app.extensions import db
from app.money import from_minor_units, quantize, round_price, round_to_cents
from app.rating.models import SessionCharge

BATCH = 2000


def _amount(minor: int | None, currency: str) -> str:
    return str(from_minor_units(int(minor or 0), currency))


def _csv(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """CSV text in chunks of ``BATCH`` rows, so a streamed response never holds the whole export."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


Columns = TypeVarTuple("Columns")


def _finalized(query: Select[*Columns], period: str | None) -> Select[*Columns]:
    query = query.where(Invoice.status == InvoiceStatus.FINALIZED)
    return query.where(Invoice.period == period) if period else query


# --- invoices and lines ------------------------------------------------------------------------------------

INVOICE_COLUMNS = [
    "number",
    "kind",
    "issue_date",
    "due_date",
    "period",
    "customer_number",
    "buyer_name",
    "buyer_company",
    "buyer_vat_number",
    "buyer_country",
    "currency",
    "subtotal_excl_vat",
    "vat",
    "total_incl_vat",
    "payment_state",
    "paid_at",
    "credits_invoice",
]


def invoice_rows(period: str | None) -> Iterator[list[object]]:
    credited = aliased(Invoice)
    query = (
        _finalized(
            select(
                Invoice.number,
                Invoice.kind,
                Invoice.issue_date,
                Invoice.due_date,
                Invoice.period,
                Invoice.account_id,
                Account.full_name,
                Account.company_name,
                Account.vat_number,
                Account.country,
                Invoice.currency,
                Invoice.subtotal_minor,
                Invoice.vat_minor,
                Invoice.total_minor,
                Invoice.payment_state,
                Invoice.paid_at,
                credited.number,
            )
            .join(Account, Account.id == Invoice.account_id)
            .outerjoin(credited, credited.id == Invoice.credits_invoice_id),
            period,
        )
        .order_by(Invoice.series, Invoice.sequence)
        .execution_options(yield_per=BATCH)
    )
    for (
        number,
        kind,
        issued,
        due,
        month,
        account_id,
        name,
        company,
        vat_number,
        country,
        currency,
        subtotal,
        vat,
        total,
        state,
        paid_at,
        credits,
    ) in db.session.execute(query):
        assert issued is not None  # finalized invoices only: every one has its issue date
        yield [
            number,
            kind.value,
            issued.isoformat(),
            due.isoformat() if due else "",
            month,
            f"{account_id:08d}",
            name,
            company or "",
            vat_number or "",
            country,
            currency,
            _amount(subtotal, currency),
            _amount(vat, currency),
            _amount(total, currency),
            state.value,
            paid_at.isoformat() if paid_at else "",
            credits or "",
        ]


def invoices_csv(period: str | None) -> Iterator[str]:
    return _csv(INVOICE_COLUMNS, invoice_rows(period))


LINE_COLUMNS = [
    "invoice_number",
    "invoice_kind",
    "issue_date",
    "period",
    "position",
    "line_kind",
    "description",
    "session_charge_id",
    "cdr_id",
    "cpo",
    "quantity",
    "currency",
    "cpo_cost_excl_vat",
    "fees_excl_vat",
    "correction_excl_vat",
    "amount_excl_vat",
    "vat_rate",
    "vat_country",
]


def _vat_country() -> ColumnElement[str]:
    """The country whose VAT a line carries (``details.vat_country``; '' on lines frozen before lines said it)."""
    return func.coalesce(InvoiceLine.details["vat_country"].as_string(), literal(""))


def line_rows(period: str | None) -> Iterator[list[object]]:
    query = (
        _finalized(
            select(
                Invoice.number,
                Invoice.kind,
                Invoice.issue_date,
                Invoice.period,
                InvoiceLine.position,
                InvoiceLine.kind,
                InvoiceLine.description,
                InvoiceLine.session_charge_id,
                Cdr.ocpi_id,
                Cdr.country_code,
                Cdr.party_id,
                InvoiceLine.quantity,
                Invoice.currency,
                InvoiceLine.cpo_cost_minor,
                InvoiceLine.fees_minor,
                InvoiceLine.amount_minor,
                InvoiceLine.vat_rate,
                _vat_country(),
            )
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .outerjoin(SessionCharge, SessionCharge.id == InvoiceLine.session_charge_id)
            .outerjoin(Cdr, Cdr.id == SessionCharge.cdr_id),
            period,
        )
        .order_by(Invoice.series, Invoice.sequence, InvoiceLine.position)
        .execution_options(yield_per=BATCH)
    )
    for (
        number,
        kind,
        issued,
        month,
        position,
        line_kind,
        description,
        charge_id,
        cdr_id,
        country_code,
        party_id,
        quantity,
        currency,
        cpo,
        fees,
        amount,
        rate,
        vat_country,
    ) in db.session.execute(query):
        assert issued is not None  # lines of finalized invoices only: every one has its issue date
        yield [
            number,
            kind.value,
            issued.isoformat(),
            month,
            position,
            line_kind.value,
            description,
            charge_id or "",
            cdr_id or "",
            f"{country_code}*{party_id}" if country_code else "",
            format(Decimal(quantity).normalize(), "f"),
            currency,
            _amount(cpo, currency),
            _amount(fees, currency),
            # Finance's correction of an adjusted session: what the amount has beyond CPO cost and fees.
            _amount(amount - cpo - fees, currency),
            _amount(amount, currency),
            format(Decimal(rate).normalize(), "f"),
            vat_country,
        ]


def lines_csv(period: str | None) -> Iterator[str]:
    return _csv(LINE_COLUMNS, line_rows(period))


# --- VAT per rate ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VatRow:
    period: str
    kind: str
    currency: str
    rate: Decimal
    documents: int
    base_minor: int
    vat_minor: int
    country: str = ""  # whose VAT ('' for lines frozen before lines named it)


def _half_up_vat(base: ColumnElement[Any], rate: ColumnElement[Any]) -> ColumnElement[int]:
    """``round_half_up(base × rate / 100)`` in integer SQL, exactly as ``composition.vat_summary`` rounds: the
    rate as thousandths (Numeric(6,3)), ties away from zero, no floating point on either database."""
    thousandths = cast(func.round(rate * 1000), Integer)
    scaled = base * thousandths * 2
    return case((base >= 0, (scaled + 100000) // 200000), else_=-((-scaled + 100000) // 200000))


def vat_per_rate(period: str | None = None) -> list[VatRow]:
    """Per period, document kind, currency, VAT rate and the country whose VAT it is: the taxable base and the VAT,
    with the VAT rounded per invoice, rate and country (as printed on each invoice), then summed. Adds up to the
    invoices' ``vat_minor``."""
    country = _vat_country().label("country")
    per_document = (
        _finalized(
            select(
                Invoice.period.label("period"),
                Invoice.kind.label("kind"),
                Invoice.currency.label("currency"),
                InvoiceLine.invoice_id.label("invoice_id"),
                InvoiceLine.vat_rate.label("rate"),
                country,
                func.sum(InvoiceLine.amount_minor).label("base"),
            ).join(Invoice, Invoice.id == InvoiceLine.invoice_id),
            period,
        )
        .group_by(Invoice.period, Invoice.kind, Invoice.currency, InvoiceLine.invoice_id, InvoiceLine.vat_rate, country)
        .subquery()
    )
    columns = per_document.c
    query = (
        select(
            columns.period,
            columns.kind,
            columns.currency,
            columns.rate,
            columns.country,
            func.count(func.distinct(columns.invoice_id)),
            func.sum(columns.base),
            func.sum(_half_up_vat(columns.base, columns.rate)),
        )
        .group_by(columns.period, columns.kind, columns.currency, columns.rate, columns.country)
        .order_by(columns.period, columns.kind, columns.currency, columns.rate.desc(), columns.country)
    )
    return [
        VatRow(
            month,
            InvoiceKind(kind).value,
            currency,
            Decimal(rate).normalize(),
            documents,
            int(base or 0),
            int(vat or 0),
            vat_country or "",
        )
        for month, kind, currency, rate, vat_country, documents, base, vat in db.session.execute(query)
    ]


VAT_COLUMNS = ["period", "kind", "currency", "vat_rate", "vat_country", "documents", "base_excl_vat", "vat"]


def vat_csv(rows: list[VatRow]) -> Iterator[str]:
    return _csv(
        VAT_COLUMNS,
        (
            [
                row.period,
                row.kind,
                row.currency,
                format(row.rate, "f"),
                row.country,
                row.documents,
                _amount(row.base_minor, row.currency),
                _amount(row.vat_minor, row.currency),
            ]
            for row in rows
        ),
    )


# --- margin per CPO and month ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarginRow:
    month: str
    country_code: str
    party_id: str
    currency: str
    sessions: int
    kwh: Decimal
    cpo_cost: Decimal  # what we owe the CPO, excl. VAT
    revenue: Decimal  # what we bill the driver for the session, excl. VAT
    written_off: int

    @property
    def cpo(self) -> str:
        return f"{self.country_code}*{self.party_id}"

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cpo_cost

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue:
            return None
        return quantize(self.margin * 100 / self.revenue, 1)


def _revenue() -> ColumnElement[Decimal]:
    """Session revenue excl. VAT after finance's decisions: a written-off session earns nothing, an adjusted
    one its adjusted price without VAT; everything else (held ones too) as rated."""
    adjusted = SessionHold.adjusted_incl_vat * 100 / (100 + SessionCharge.vat_rate)
    return case(
        (SessionHold.status == HoldStatus.WRITTEN_OFF, literal(0)),
        (SessionHold.status == HoldStatus.ADJUSTED, adjusted),
        else_=SessionCharge.driver_excl_vat,
    )


def _four(value: object) -> Decimal:
    return round_price(Decimal(str(value or 0)))


def margin_month(month: str) -> list[MarginRow]:
    """One ``GROUP BY`` over the month's rated sessions (by session start in the billing time zone)."""
    start, end = period_bounds(month)
    amount = Numeric(18, 4)
    query = (
        select(
            Cdr.country_code,
            Cdr.party_id,
            SessionCharge.currency,
            func.count(SessionCharge.id),
            cast(func.sum(SessionCharge.kwh), amount),
            cast(func.sum(SessionCharge.cpo_cost_excl_vat), amount),
            cast(func.sum(_revenue()), amount),
            func.sum(case((SessionHold.status == HoldStatus.WRITTEN_OFF, 1), else_=0)),
        )
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
        .where(Cdr.start_date_time >= start, Cdr.start_date_time < end)
        .group_by(Cdr.country_code, Cdr.party_id, SessionCharge.currency)
        .order_by(Cdr.country_code, Cdr.party_id, SessionCharge.currency)
    )
    return [
        MarginRow(
            month,
            country_code,
            party_id,
            currency,
            count,
            _four(kwh),
            _four(cpo),
            _four(revenue),
            int(written_off or 0),
        )
        for country_code, party_id, currency, count, kwh, cpo, revenue, written_off in db.session.execute(query)
    ]


def months_between(first: str, last: str, limit: int = 36) -> list[str]:
    year, month = (int(part) for part in first.split("-"))
    months: list[str] = []
    while f"{year:04d}-{month:02d}" <= last and len(months) < limit:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def margin_report(months: list[str]) -> list[MarginRow]:
    """The margin per CPO for each month (one set-based query per month, newest month first)."""
    return [row for month in sorted(months, reverse=True) for row in margin_month(month)]


MARGIN_COLUMNS = [
    "month",
    "cpo",
    "currency",
    "sessions",
    "kwh",
    "cpo_cost_excl_vat",
    "revenue_excl_vat",
    "margin",
    "margin_percent",
    "written_off_sessions",
]


def _cents(value: Decimal) -> str:
    return str(round_to_cents(value))


def margin_csv(rows: list[MarginRow]) -> Iterator[str]:
    return _csv(
        MARGIN_COLUMNS,
        (
            [
                row.month,
                row.cpo,
                row.currency,
                row.sessions,
                format(row.kwh.normalize(), "f"),
                _cents(row.cpo_cost),
                _cents(row.revenue),
                _cents(row.margin),
                "" if row.margin_percent is None else str(row.margin_percent),
                row.written_off,
            ]
            for row in rows
        ),
    )
