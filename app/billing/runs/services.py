"""The monthly invoice run: preview → approve → finalize (numbers, frozen invoices) → deliver.

Every account is a ``RunItem``; a batch of them (a Celery chunk) is finalized in one transaction together with
its items' status, so a run killed mid-way resumes where it stopped: finished accounts have their invoice
(unique per account, period and currency) and a ``done`` item, unfinished ones roll back completely and give
their numbers back. An account that fails is retried alone, so it fails alone. With a Celery broker the items
are shared out in chunks over many workers; without one they run inline.

These services only flush. ``runs.driver`` drives the steps for every door and commits each; ``runs.batches``
commits each batch of accounts (inline or on a worker).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal
from typing import Any, cast

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import CursorResult, Select, Table, exists, func, or_, select, update

from app.accounts.models import Account
from app.audit.services import Actor, record
from app.billing.invoicing.composition import (
    MAX_INVOICE_MINOR,
    MAX_QUANTITY,
    compose_many,
    period_bounds,
    vat_summary,
)
from app.billing.invoicing.invoices import BillingError, finalize_compositions
from app.billing.invoicing.outliers import limits, outlier_filter, outlier_reasons
from app.billing.models import (
    HoldStatus,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceRun,
    InvoiceStatus,
    LineKind,
    RunItem,
    RunStatus,
    SessionHold,
)
from app.charging.models import Cdr
from app.db import utcnow
from app.db_bulk import insert_rows
from app.extensions import db
from app.failures import failure_reason
from app.payments.models import PaymentMethod, PaymentMethodStatus
from app.plans.models import Plan, Subscription
from app.plans.services import billing_zone
from app.rating.models import SessionCharge
from app.rating.pending import open_problems, rate_pending

# A month of this century: year 0000 or 9999 would overflow the date arithmetic of its bounds (a 500 before),
# and no e-MSP bills sessions outside it.
PERIOD = re.compile(r"^20\d{2}-(0[1-9]|1[0-2])$")
ZERO = Decimal(0)
CHUNK_SIZE = 500  # accounts per Celery task / inline batch, unless BILLING_CHUNK_SIZE says otherwise
MAX_BATCH = 500  # accounts per transaction: bounds the memory of a batch and the work a failure repeats
log = logging.getLogger(__name__)


def check_period(period: str) -> str:
    if not PERIOD.match(period or ""):
        raise BillingError(_l("The month must look like 2026-10, not %(period)r.", period=period))
    return period


def check_month_ended(period: str, now: dt.datetime | None = None) -> str:
    """A run may cover only a month that has ended in the seller's time zone (``BILLING_TIMEZONE``).

    A month still running would invoice only part of its sessions, under a due date that can fall before the
    period ends; a future month would bill sessions of this month under the next one's number. Checked at every
    step (preview, approve, finalize), so a preview stored before this rule cannot be finalized either."""
    check_period(period)
    _start, end = period_bounds(period)
    if (now or utcnow()) < end:
        first_day = end.astimezone(billing_zone()).date().isoformat()
        raise BillingError(
            _l(
                "%(period)s has not ended yet: a run may cover only a month that has ended (from %(day)s on).",
                period=period,
                day=first_day,
            )
        )
    return period


def last_ended_month(now: dt.datetime | None = None) -> str:
    """The latest month a run may cover: the one before the current month in the seller's time zone."""
    local = (now or utcnow()).astimezone(billing_zone())
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def run_for(period: str) -> InvoiceRun | None:
    return db.session.scalar(
        select(InvoiceRun).where(InvoiceRun.period == period, InvoiceRun.status != RunStatus.CANCELLED)
    )


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


def _hold_outliers(period_end: dt.datetime) -> int:
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


def _euros(minor: int) -> str:
    return str(Decimal(minor).scaleb(-2))


def _figures(period: str, accounts: list[int], failed: dict[int, str]) -> dict[str, Any]:
    """The preview's figures, computed by the code that makes the invoices: each account's month is composed
    (``compose_many``, as finalizing will: subscription fees prorated, held and written-off sessions left out,
    adjusted ones at finance's amount, every line rounded once, VAT per invoice) and the compositions are added
    up. So the preview and the invoices agree to the cent (finance once saw €270.88 previewed and €235.90
    charged after adjusting a held session). Accounts whose month cannot be composed are added to ``failed``
    (account id → why) and left out. Composed in batches: bounded memory, a handful of queries each."""
    plans = {plan.id: (plan.code, plan.version) for plan in db.session.scalars(select(Plan))}
    per_rate: dict[Decimal, list[int]] = {}  # rate → [session lines, excl. VAT, VAT, CPO cost, margin] (minor)
    per_plan: dict[tuple[str, int], list[int]] = {}  # (code, version) → [session lines, excl. VAT, fees]
    held = subscriptions = 0
    billable = [account_id for account_id in accounts if account_id not in failed]
    for start in range(0, len(billable), MAX_BATCH):
        batch = list(db.session.scalars(select(Account).where(Account.id.in_(billable[start : start + MAX_BATCH]))))
        for composition in compose_many(batch, period, hold_outliers=False, failed=failed):
            held += len(composition.held)
            by_rate: dict[Decimal, list[Any]] = {}
            for line in composition.lines:
                by_rate.setdefault(line.vat_rate, []).append(line)
                if line.kind == LineKind.SUBSCRIPTION:
                    subscriptions += 1
                    key = (str(line.details["plan"]), int(line.details["version"]))
                    per_plan.setdefault(key, [0, 0, 0])[2] += line.amount_minor
                elif line.plan_id in plans:
                    plan_sums = per_plan.setdefault(plans[line.plan_id], [0, 0, 0])
                    plan_sums[0] += 1
                    plan_sums[1] += line.amount_minor
            for rate, lines in by_rate.items():
                sums = per_rate.setdefault(rate, [0, 0, 0, 0, 0])
                sums[0] += sum(1 for line in lines if line.kind != LineKind.SUBSCRIPTION)
                sums[1] += sum(line.amount_minor for line in lines)
                sums[2] += sum(entry["vat"] for entry in vat_summary(lines))  # rounded per invoice, as issued
                sums[3] += sum(line.cpo_cost_minor for line in lines)
                sums[4] += sum(line.amount_minor - line.cpo_cost_minor for line in lines)
        for account in batch:  # a month of a million accounts: keep the session's identity map small
            db.session.expunge(account)
    billable = [account_id for account_id in accounts if account_id not in failed]  # composing failed some
    with_method = set(
        db.session.scalars(select(PaymentMethod.account_id).where(PaymentMethod.status == PaymentMethodStatus.ACTIVE))
    )
    note = "amounts as the invoices will charge them: composed by the invoice code, each line rounded once"
    if failed:
        note += (
            f"; {len(failed)} account(s) left out of these figures: they cannot be invoiced as they stand "
            "(failed_accounts says why); finalizing reports them failed until their data is fixed"
        )
    return {
        "accounts": len(billable),
        "sessions": sum(sums[0] for sums in per_rate.values()),
        "subscriptions": subscriptions,
        "per_vat_rate": [
            {
                "rate": str(rate.normalize()),
                "sessions": n,
                "excl_vat": _euros(excl),
                "vat": _euros(vat),
                "cpo_cost": _euros(cpo),
                "margin": _euros(margin),
            }
            for rate, (n, excl, vat, cpo, margin) in sorted(per_rate.items())
        ],
        "per_plan": [
            {"plan": f"{code} v{version}", "sessions": n, "excl_vat": _euros(excl), "subscription_fees": _euros(fees)}
            for (code, version), (n, excl, fees) in sorted(per_plan.items())
        ],
        "held_sessions": held,
        "accounts_without_payment_method": len([a for a in billable if a not in with_method]),
        "accounts_failed": len(failed),
        "failed_accounts": [
            {"account_id": account_id, "reason": reason} for account_id, reason in sorted(failed.items())[:_LISTED]
        ],
        "note": note,
    }


# Failed accounts listed by name in a preview (all are counted).
_LISTED = 200


def preview(period: str, actor: Actor) -> InvoiceRun:
    """Compute and store the preview of a month (idempotent: a second dry run refreshes the figures).

    One bad unit fails alone: a CDR that cannot be rated stays unrated (``not_rated`` says why), a session whose
    figures cannot be checked is held, an account that cannot be invoiced as it stands is left out of the
    figures and listed in ``failed_accounts`` with why."""
    check_month_ended(period)
    run = run_for(period)
    if run is not None and run.status not in (RunStatus.PREVIEW,):
        raise BillingError(
            _l("The run for %(period)s is past its preview: it cannot be computed again.", period=period)
        )
    _start, end = period_bounds(period)
    rated, unrated = rate_pending()  # CDRs that could not be rated on arrival get another chance
    _hold_outliers(end)
    accounts = candidate_accounts(period)
    candidates = set(accounts)
    failed = {
        account_id: reason for account_id, reason in unbillable_accounts(period).items() if account_id in candidates
    }
    if run is None:
        run = InvoiceRun(period=period, created_by=actor.label)
        db.session.add(run)
    run.preview = {**_figures(period, accounts, failed), "rated_now": rated, "not_rated": unrated[:100]}
    run.accounts_total = len(accounts)
    db.session.flush()
    for account_id, reason in failed.items():
        log.warning("invoice run %s, preview: account %s left out: %s", period, account_id, reason)
    record("billing.preview", "billing_run", run.id, actor=actor, details={"period": period})
    return run


def approve(run: InvoiceRun, actor: Actor) -> InvoiceRun:
    """Finance approves the preview: the accounts to invoice are fixed as run items."""
    if run.status != RunStatus.PREVIEW:
        raise BillingError(_l("Only a run in preview can be approved."))
    check_month_ended(run.period)
    accounts = candidate_accounts(run.period)
    # One multi-row write (COPY on PostgreSQL): a month has a row per account, 100,000 of them and more.
    insert_rows(
        cast(Table, RunItem.__table__),
        [{"run_id": run.id, "account_id": account_id, "status": "pending"} for account_id in accounts],
    )
    run.accounts_total = len(accounts)
    run.status = RunStatus.APPROVED
    run.approved_by = actor.label
    run.approved_at = utcnow()
    db.session.flush()
    record("billing.approve", "billing_run", run.id, actor=actor, details={"accounts": len(accounts)})
    return run


def pending_chunks(run: InvoiceRun, size: int | None = None) -> list[list[int]]:
    size = size or current_app.config.get("BILLING_CHUNK_SIZE") or CHUNK_SIZE
    ids = list(
        db.session.scalars(
            select(RunItem.id).where(RunItem.run_id == run.id, RunItem.status == "pending").order_by(RunItem.id)
        )
    )
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def mark_item_failed(item_id: int, error: Exception | str) -> None:
    """Record why an account's unit of work failed (the run stays open; a resume retries it), and log it."""
    reason = error if isinstance(error, str) else failure_reason(error)
    account_id = db.session.scalar(
        update(RunItem)
        .where(RunItem.id == item_id, RunItem.status == "pending")
        .values(status="failed", error=reason, updated_at=utcnow())
        .returning(RunItem.account_id)
    )
    if account_id is not None:
        log.warning("invoice run: account %s failed: %s", account_id, reason)


def failed_items(run: InvoiceRun, limit: int = 200) -> list[dict[str, Any]]:
    """The run's accounts that failed, with why (oldest first): the CLI and the back office show them."""
    return [
        {"account_id": account_id, "reason": error, "at": at.isoformat()}
        for account_id, error, at in db.session.execute(
            select(RunItem.account_id, RunItem.error, RunItem.updated_at)
            .where(RunItem.run_id == run.id, RunItem.status == "failed")
            .order_by(RunItem.id)
            .limit(limit)
        )
    ]


def finalize_items(item_ids: list[int]) -> None:
    """Compose and store the invoices of these run items in the current transaction (the caller commits).

    The batch is composed and stored set-based (a few queries and multi-row inserts for all its accounts, see
    ``composition.compose_many`` and ``invoices.finalize_compositions``) together with its run items' status,
    so committed as one unit (``runs.batches.process_items``) a crash leaves it wholly done or wholly pending,
    with its numbers given back."""
    # The pending items are locked (PostgreSQL; SQLite locks the whole database on write anyway) so a chunk
    # delivered twice to two workers is not done twice: the second skips what the first holds, and sees it
    # done once the first commits.
    items = db.session.execute(
        select(RunItem.id, RunItem.run_id, RunItem.account_id)
        .where(RunItem.id.in_(item_ids), RunItem.status == "pending")
        .order_by(RunItem.id)
        .with_for_update(skip_locked=True)
    ).all()
    if not items:
        return
    periods = dict(
        db.session.execute(
            select(InvoiceRun.id, InvoiceRun.period).where(InvoiceRun.id.in_({item.run_id for item in items}))
        ).all()
    )
    now = utcnow()
    for run_id in sorted({item.run_id for item in items}):
        period = periods[run_id]
        run_items = [item for item in items if item.run_id == run_id]
        account_ids = [item.account_id for item in run_items]
        existing = set(
            db.session.scalars(
                select(Invoice.account_id).where(
                    Invoice.account_id.in_(account_ids),
                    Invoice.period == period,
                    Invoice.kind == InvoiceKind.INVOICE,
                    Invoice.status == InvoiceStatus.FINALIZED,
                )
            )
        )
        accounts = {
            account.id: account
            for account in db.session.scalars(
                select(Account).where(Account.id.in_([a for a in account_ids if a not in existing]))
            )
        }
        todo = [accounts[item.account_id] for item in run_items if item.account_id in accounts]
        # An account whose month cannot be composed fails alone, here, with why; the batch goes on without it.
        failed: dict[int, str] = {}
        invoiced = existing | set(finalize_compositions(compose_many(todo, period, failed=failed), run_id=run_id))
        for item in run_items:
            if item.account_id in failed:
                mark_item_failed(item.id, failed[item.account_id])
        done = [item.id for item in run_items if item.account_id in invoiced]
        skipped = [item.id for item in run_items if item.account_id not in invoiced and item.account_id not in failed]
        if done:
            # Each item points at its account's invoice of the period: one UPDATE for the whole batch.
            invoice_of_item = (
                select(Invoice.id)
                .where(
                    Invoice.account_id == RunItem.account_id,
                    Invoice.period == period,
                    Invoice.kind == InvoiceKind.INVOICE,
                    Invoice.status == InvoiceStatus.FINALIZED,
                )
                .limit(1)
                .scalar_subquery()
            )
            db.session.execute(
                update(RunItem)
                .where(RunItem.id.in_(done))
                .values(status="done", invoice_id=invoice_of_item, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        if skipped:
            db.session.execute(
                update(RunItem)
                .where(RunItem.id.in_(skipped))
                .values(status="skipped", invoice_id=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )


def progress(run: InvoiceRun) -> dict[str, int]:
    counts = dict(
        db.session.execute(
            select(RunItem.status, func.count()).where(RunItem.run_id == run.id).group_by(RunItem.status)
        ).all()
    )
    return {
        "total": run.accounts_total,
        "done": counts.get("done", 0),
        "skipped": counts.get("skipped", 0),
        "failed": counts.get("failed", 0),
        "pending": counts.get("pending", 0),
    }


def complete_if_done(run_id: int) -> bool:
    """Mark the run finalized once every item is done (called after every chunk; safe to call twice; the caller
    commits). Failed items keep the run open: a rerun retries them."""
    run = db.session.get_one(InvoiceRun, run_id)
    counts = progress(run)
    if counts["pending"] or counts["failed"]:
        return False
    totals = db.session.execute(
        select(
            func.count(Invoice.id),
            func.coalesce(func.sum(Invoice.total_minor), 0),
            func.coalesce(func.sum(Invoice.vat_minor), 0),
        ).where(Invoice.run_id == run_id)
    ).one()
    changed = cast(
        CursorResult[Any],
        db.session.execute(
            update(InvoiceRun)
            .where(InvoiceRun.id == run_id, InvoiceRun.status == RunStatus.FINALIZING)
            .values(
                status=RunStatus.FINALIZED,
                finished_at=utcnow(),
                results={
                    **counts,
                    "invoices": totals[0],
                    "total_minor": int(totals[1]),
                    "vat_minor": int(totals[2]),
                    "uninvoiced_sessions": len(uninvoiced_sessions(run.period)),
                    # Checked once here (it reads every CDR without a charge), shown by the run page.
                    "unrated_cdrs": unrated_cdrs(run.period, limit=51),
                },
            )
        ),
    ).rowcount
    return bool(changed)


def start_finalizing(run: InvoiceRun, actor: Actor) -> InvoiceRun:
    if run.status not in (RunStatus.APPROVED, RunStatus.FINALIZING):
        raise BillingError(_l("Approve the run first."))
    check_month_ended(run.period)
    if run.status == RunStatus.APPROVED:
        run.status = RunStatus.FINALIZING
        record("billing.finalize", "billing_run", run.id, actor=actor)
    # Failed items get another chance on a resume.
    db.session.execute(
        update(RunItem).where(RunItem.run_id == run.id, RunItem.status == "failed").values(status="pending", error=None)
    )
    db.session.flush()
    return run


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
