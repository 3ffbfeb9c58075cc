"""What a month has to bill: the accounts with something to invoice, the sessions held for finance (outliers), the
accounts no invoice can hold, and what a run left uninvoiced or unrated.

Every question starts from the rated sessions on no invoice yet (:func:`_uninvoiced`); read-only except
:func:`hold_outliers`, which adds holds and flushes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, exists, func, or_, select

from app.accounts.models import Account
from app.billing.invoicing.composition import MAX_INVOICE_MINOR, MAX_QUANTITY, period_bounds
from app.billing.invoicing.outliers import limits, outlier_filter, outlier_reasons
from app.billing.models import HoldStatus, Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, SessionHold
from app.charging.models import Cdr
from app.extensions import db
from app.plans.models import Plan, Subscription
from app.rating.models import SessionCharge
from app.rating.pending import open_problems


def _uninvoiced(period_end: dt.datetime, *columns: Any) -> Select[Any]:
    """``columns`` of the rated sessions with an account that started before ``period_end`` and are on no invoice.

    Written as joins and ``NOT EXISTS`` (not ``id IN (subquery)``): over a month of a million sessions PostgreSQL
    then hashes each table once, where the ``IN`` form made it probe two indexes a million times."""
    return (
        select(*columns)
        .select_from(SessionCharge)
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .where(
            Cdr.start_date_time < period_end,
            SessionCharge.account_id.is_not(None),
            ~exists().where(InvoiceLine.session_charge_id == SessionCharge.id),
        )
    )


def _billable(query: Select[Any]) -> Select[Any]:
    """Narrow an :func:`_uninvoiced` query to the sessions that go on an invoice: not held (or released or
    adjusted by finance)."""
    return query.outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id).where(
        SessionHold.id.is_(None) | SessionHold.status.in_([HoldStatus.RELEASED, HoldStatus.ADJUSTED])
    )


def candidate_accounts(period: str) -> list[int]:
    """Accounts with something to bill: a paid plan during the period or a session not invoiced yet."""
    start, end = period_bounds(period)
    with_fee = (
        select(Subscription.account_id)
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(
            Plan.monthly_fee > 0,
            Subscription.starts_at < end,
            (Subscription.ends_at.is_(None)) | (Subscription.ends_at > start),
        )
    )
    with_sessions = _uninvoiced(end, SessionCharge.account_id)
    already = select(Invoice.account_id).where(
        Invoice.period == period, Invoice.kind == InvoiceKind.INVOICE, Invoice.status == InvoiceStatus.FINALIZED
    )
    ids = db.session.scalars(
        select(Account.id)
        .where(Account.id.in_(with_fee.union(with_sessions)), Account.id.not_in(already))
        .order_by(Account.id)
    )
    return list(ids)


def hold_outliers(period_end: dt.datetime) -> int:
    """Hold for finance every session up to ``period_end``, on no invoice and not held yet, that passes the
    outlier limits (``invoicing.outliers``); how many were held."""
    bounds = limits()
    rows = db.session.execute(
        _uninvoiced(period_end, SessionCharge, Cdr)
        .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
        .where(SessionHold.id.is_(None), outlier_filter(bounds))
    )
    count = 0
    for charge, cdr in rows:
        reasons = outlier_reasons(charge, cdr, bounds)
        if reasons:
            db.session.add(SessionHold(session_charge_id=charge.id, reasons=reasons))
            count += 1
    db.session.flush()
    return count


def unbillable_accounts(period: str, limit: int = 1000) -> dict[int, str]:
    """Accounts with a billable session (not held) whose figures no invoice can carry, with which session and
    why: more than an invoice line holds (``composition.MAX_INVOICE_MINOR``), or not a number (PostgreSQL's
    ``numeric`` stores ``NaN``, which compares above every number, so the same test finds it). Finalizing such
    an account fails for it alone (``composition.CompositionError``); the preview leaves it out of its figures
    and names it. Sessions beyond the outlier limits are held before this is asked, so these are sessions finance
    released or adjusted, credits, or figures that are not numbers."""
    _start, end = period_bounds(period)
    line_limit = Decimal(MAX_INVOICE_MINOR) / 100  # in currency units: every currency we bill has cents
    adjusted = SessionHold.status == HoldStatus.ADJUSTED
    as_rated = SessionHold.status.is_(None) | (SessionHold.status != HoldStatus.ADJUSTED)
    amounts = or_(
        *(
            func.abs(column) > line_limit
            for column in (
                SessionCharge.driver_excl_vat,
                SessionCharge.cpo_cost_excl_vat,
                SessionCharge.vat_amount,
                SessionCharge.margin,
            )
        )
    )
    always = or_(func.abs(SessionCharge.kwh) >= MAX_QUANTITY, func.abs(SessionCharge.vat_rate) > 100)
    adjusted_ids = select(SessionHold.session_charge_id).where(adjusted)
    out_of_range = (
        # The same test on the session's own columns first, so the month's sessions are filtered as they are read
        # and only the few suspects are joined (a separate scan over the whole join doubled this query's time).
        or_(always, amounts, SessionCharge.id.in_(adjusted_ids))
        & or_(always, adjusted & (func.abs(SessionHold.adjusted_incl_vat) > line_limit), as_rated & amounts)
    )
    rows = db.session.execute(
        _billable(
            _uninvoiced(
                end,
                SessionCharge.account_id,
                SessionCharge.id,
                Cdr.ocpi_id,
                SessionCharge.kwh,
                SessionCharge.driver_excl_vat,
                SessionHold.adjusted_incl_vat,
            )
        )
        .where(out_of_range)
        .order_by(SessionCharge.account_id, SessionCharge.id)
        .limit(limit)
    )
    found: dict[int, str] = {}
    for account_id, charge_id, ocpi_id, kwh, excl_vat, adjusted_incl_vat in rows:
        price = (
            f"adjusted to {adjusted_incl_vat} incl. VAT" if adjusted_incl_vat is not None else f"{excl_vat} excl. VAT"
        )
        found.setdefault(
            account_id,
            f"session charge {charge_id} (CDR {ocpi_id!r}): {kwh} kWh, {price}: figures an invoice cannot hold",
        )
    return found


def uninvoiced_sessions(period: str) -> list[int]:
    """Billable sessions of the period on no invoice and not held: empty after a complete run."""
    _start, end = period_bounds(period)
    return list(db.session.scalars(_billable(_uninvoiced(end, SessionCharge.id))))


def unrated_reasons(period: str, limit: int = 1000) -> dict[str, str]:
    """Why CDRs of :func:`unrated_cdrs` could not be priced, where a rating attempt recorded it: OCPI id → why."""
    _start, end = period_bounds(period)
    ids = list(
        db.session.scalars(
            select(Cdr.id)
            .outerjoin(SessionCharge, SessionCharge.cdr_id == Cdr.id)
            .where(SessionCharge.id.is_(None), Cdr.account_id.is_not(None), Cdr.start_date_time < end)
            .order_by(Cdr.start_date_time, Cdr.id)
            .limit(limit)
        )
    )
    return {ocpi_id: reason for ocpi_id, reason in open_problems(ids, limit=limit).values()}


def unrated_cdrs(period: str, limit: int = 1000) -> list[str]:
    """CDRs of our drivers up to the end of the period that could not be priced (a currency other than the
    plan's, no plan at the time, a tariff that does not parse): on no invoice either, so finance must see them.
    ``flask rating rate-pending`` says why for each."""
    _start, end = period_bounds(period)
    return list(
        db.session.scalars(
            select(Cdr.ocpi_id)
            .outerjoin(SessionCharge, SessionCharge.cdr_id == Cdr.id)
            .where(SessionCharge.id.is_(None), Cdr.account_id.is_not(None), Cdr.start_date_time < end)
            .order_by(Cdr.start_date_time, Cdr.id)
            .limit(limit)
        )
    )
