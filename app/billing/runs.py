"""The monthly invoice run: preview → approve → finalize (numbers, frozen invoices) → deliver.

Every account is one unit of work in its own transaction (a ``RunItem``), so a run killed mid-way resumes
where it stopped: finished accounts have their invoice (unique per account, period and currency), unfinished
ones roll back completely and give their number back. With a Celery broker the items are shared out in chunks
over many workers; without one they run inline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update

from app.accounts.models import Account
from app.audit.services import Actor, record
from app.billing.composition import compose, period_bounds
from app.billing.invoices import BillingError, finalize_composition
from app.billing.models import (
    HoldStatus,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceRun,
    InvoiceStatus,
    RunItem,
    RunStatus,
    SessionHold,
)
from app.billing.outliers import limits, outlier_filter, outlier_reasons
from app.db import utcnow
from app.extensions import db
from app.payments.models import PaymentMethod, PaymentMethodStatus
from app.plans.models import Plan, Subscription
from app.rating.models import SessionCharge
from app.rating.services import rate_pending
from app.roaming.models import Cdr

PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CHUNK_SIZE = 200


def check_period(period: str) -> str:
    if not PERIOD.match(period or ""):
        raise BillingError(f"period must look like 2026-10, not {period!r}")
    return period


def run_for(period: str) -> InvoiceRun | None:
    return db.session.scalar(select(InvoiceRun).where(InvoiceRun.period == period,
                                                      InvoiceRun.status != RunStatus.CANCELLED))


def _uninvoiced_charges(period_end):  # type: ignore[no-untyped-def]
    return (select(SessionCharge.id).join(Cdr, Cdr.id == SessionCharge.cdr_id)
            .outerjoin(InvoiceLine, InvoiceLine.session_charge_id == SessionCharge.id)
            .where(Cdr.start_date_time < period_end, InvoiceLine.id.is_(None), SessionCharge.account_id.is_not(None)))


def candidate_accounts(period: str) -> list[int]:
    """Accounts with something to bill: a paid plan during the period or a session not invoiced yet."""
    start, end = period_bounds(period)
    with_fee = (select(Subscription.account_id).join(Plan, Plan.id == Subscription.plan_id)
                .where(Plan.monthly_fee > 0, Subscription.starts_at < end,
                       (Subscription.ends_at.is_(None)) | (Subscription.ends_at > start)))
    with_sessions = (select(SessionCharge.account_id).where(SessionCharge.id.in_(_uninvoiced_charges(end))))
    already = select(Invoice.account_id).where(Invoice.period == period, Invoice.kind == InvoiceKind.INVOICE,
                                               Invoice.status == InvoiceStatus.FINALIZED)
    ids = db.session.scalars(select(Account.id).where(
        Account.id.in_(with_fee.union(with_sessions)), Account.id.not_in(already)).order_by(Account.id))
    return list(ids)


def _hold_outliers(period_end) -> int:  # type: ignore[no-untyped-def]
    bounds = limits()
    rows = db.session.execute(
        select(SessionCharge, Cdr).join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
        .where(SessionCharge.id.in_(_uninvoiced_charges(period_end)), SessionHold.id.is_(None),
               outlier_filter(bounds)))
    count = 0
    for charge, cdr in rows:
        reasons = outlier_reasons(charge, cdr, bounds)
        if reasons:
            db.session.add(SessionHold(session_charge_id=charge.id, reasons=reasons))
            count += 1
    db.session.flush()
    return count


def _figures(period: str, accounts: list[int]) -> dict[str, Any]:
    _start, end = period_bounds(period)
    billable = (select(SessionCharge.id).where(SessionCharge.id.in_(_uninvoiced_charges(end)))
                .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
                .where((SessionHold.id.is_(None)) | (SessionHold.status.in_([HoldStatus.RELEASED,
                                                                             HoldStatus.ADJUSTED]))))
    per_rate = db.session.execute(
        select(SessionCharge.vat_rate, func.count(), func.sum(SessionCharge.driver_excl_vat),
               func.sum(SessionCharge.vat_amount), func.sum(SessionCharge.cpo_cost_excl_vat),
               func.sum(SessionCharge.margin))
        .where(SessionCharge.id.in_(billable)).group_by(SessionCharge.vat_rate)).all()
    per_plan = db.session.execute(
        select(Plan.code, Plan.version, func.count(), func.sum(SessionCharge.driver_excl_vat))
        .join(Plan, Plan.id == SessionCharge.plan_id)
        .where(SessionCharge.id.in_(billable)).group_by(Plan.code, Plan.version)).all()
    held = db.session.scalar(select(func.count(SessionHold.id)).where(
        SessionHold.status == HoldStatus.HELD, SessionHold.session_charge_id.in_(_uninvoiced_charges(end))))
    with_method = set(db.session.scalars(select(PaymentMethod.account_id).where(
        PaymentMethod.status == PaymentMethodStatus.ACTIVE)))
    return {
        "accounts": len(accounts),
        "sessions": sum(row[1] for row in per_rate),
        "per_vat_rate": [{"rate": str(Decimal(rate).normalize()), "sessions": n, "excl_vat": str(excl or 0),
                          "vat": str(vat or 0), "cpo_cost": str(cpo or 0), "margin": str(margin or 0)}
                         for rate, n, excl, vat, cpo, margin in per_rate],
        "per_plan": [{"plan": f"{code} v{version}", "sessions": n, "excl_vat": str(excl or 0)}
                     for code, version, n, excl in per_plan],
        "held_sessions": held,
        "accounts_without_payment_method": len([a for a in accounts if a not in with_method]),
        "note": "session amounts before rounding; subscription fees are added per account at finalization",
    }


def preview(period: str, actor: Actor) -> InvoiceRun:
    """Compute and store the preview of a month (idempotent: a second dry run refreshes the figures)."""
    check_period(period)
    run = run_for(period)
    if run is not None and run.status not in (RunStatus.PREVIEW,):
        raise BillingError(f"the run for {period} is already {run.status.value}")
    _start, end = period_bounds(period)
    rated, unrated = rate_pending()  # CDRs that could not be rated on arrival get another chance
    _hold_outliers(end)
    accounts = candidate_accounts(period)
    if run is None:
        run = InvoiceRun(period=period, created_by=actor.label)
        db.session.add(run)
    run.preview = {**_figures(period, accounts), "rated_now": rated, "not_rated": unrated[:100]}
    run.accounts_total = len(accounts)
    db.session.flush()
    record("billing.preview", "billing_run", run.id, actor=actor, details={"period": period})
    return run


def approve(run: InvoiceRun, actor: Actor) -> InvoiceRun:
    """Finance approves the preview: the accounts to invoice are fixed as run items."""
    if run.status != RunStatus.PREVIEW:
        raise BillingError(f"only a previewed run can be approved (this one is {run.status.value})")
    accounts = candidate_accounts(run.period)
    if accounts:
        db.session.execute(insert(RunItem), [{"run_id": run.id, "account_id": account_id, "status": "pending"}
                                             for account_id in accounts])
    run.accounts_total = len(accounts)
    run.status = RunStatus.APPROVED
    run.approved_by = actor.label
    run.approved_at = utcnow()
    db.session.flush()
    record("billing.approve", "billing_run", run.id, actor=actor, details={"accounts": len(accounts)})
    return run


def pending_chunks(run: InvoiceRun, size: int = CHUNK_SIZE) -> list[list[int]]:
    ids = list(db.session.scalars(select(RunItem.id).where(RunItem.run_id == run.id, RunItem.status == "pending")
                                  .order_by(RunItem.id)))
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def process_items(item_ids: Iterable[int], on_done: Callable[[], None] | None = None) -> None:
    """Finalize the accounts of these run items, one committed transaction per account (the batch unit)."""
    for item_id in item_ids:
        item = db.session.get(RunItem, item_id)
        if item is None or item.status != "pending":
            continue
        run = db.session.get(InvoiceRun, item.run_id)
        try:
            account = db.session.get(Account, item.account_id)
            existing = db.session.scalar(select(Invoice).where(
                Invoice.account_id == account.id, Invoice.period == run.period, Invoice.kind == InvoiceKind.INVOICE,
                Invoice.status == InvoiceStatus.FINALIZED))
            invoice = existing or finalize_composition(compose(account, run.period), run_id=run.id)
            item.status = "done" if invoice is not None else "skipped"
            item.invoice_id = invoice.id if invoice is not None else None
            db.session.commit()
        except Exception as error:
            db.session.rollback()
            item = db.session.get(RunItem, item_id)
            item.status = "failed"
            item.error = f"{type(error).__name__}: {error}"[:2000]
            db.session.commit()
        if on_done:
            on_done()


def progress(run: InvoiceRun) -> dict[str, int]:
    counts = dict(db.session.execute(select(RunItem.status, func.count()).where(RunItem.run_id == run.id)
                                     .group_by(RunItem.status)).all())
    return {"total": run.accounts_total, "done": counts.get("done", 0), "skipped": counts.get("skipped", 0),
            "failed": counts.get("failed", 0), "pending": counts.get("pending", 0)}


def complete_if_done(run_id: int) -> bool:
    """Mark the run finalized once every item is done (called after every chunk; safe to call twice). Failed
    items keep the run open: a rerun retries them."""
    run = db.session.get(InvoiceRun, run_id)
    counts = progress(run)
    if counts["pending"] or counts["failed"]:
        return False
    totals = db.session.execute(select(func.count(Invoice.id), func.coalesce(func.sum(Invoice.total_minor), 0),
                                       func.coalesce(func.sum(Invoice.vat_minor), 0))
                                .where(Invoice.run_id == run_id)).one()
    changed = db.session.execute(
        update(InvoiceRun).where(InvoiceRun.id == run_id, InvoiceRun.status == RunStatus.FINALIZING)
        .values(status=RunStatus.FINALIZED, finished_at=utcnow(),
                results={**counts, "invoices": totals[0], "total_minor": int(totals[1]), "vat_minor": int(totals[2]),
                         "uninvoiced_sessions": len(uninvoiced_sessions(run.period))})).rowcount
    db.session.commit()
    return bool(changed)


def start_finalizing(run: InvoiceRun, actor: Actor) -> InvoiceRun:
    if run.status not in (RunStatus.APPROVED, RunStatus.FINALIZING):
        raise BillingError(f"approve the run first (it is {run.status.value})")
    if run.status == RunStatus.APPROVED:
        run.status = RunStatus.FINALIZING
        record("billing.finalize", "billing_run", run.id, actor=actor)
    # Failed items get another chance on a resume.
    db.session.execute(update(RunItem).where(RunItem.run_id == run.id, RunItem.status == "failed")
                       .values(status="pending", error=None))
    db.session.flush()
    return run


def uninvoiced_sessions(period: str) -> list[int]:
    """Billable sessions of the period on no invoice and not held: empty after a complete run."""
    _start, end = period_bounds(period)
    return list(db.session.scalars(
        select(SessionCharge.id).where(SessionCharge.id.in_(_uninvoiced_charges(end)))
        .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
        .where(SessionHold.id.is_(None) | SessionHold.status.in_([HoldStatus.RELEASED, HoldStatus.ADJUSTED]))))
