"""The run's items, one per account: how they are shared out (chunks for the workers, batches per transaction),
why one failed, the run's progress and its completion.

These only flush; ``runs.batches`` commits each batch of accounts and its items' status."""

from __future__ import annotations

import logging
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, func, select, update

from app.billing.models import Invoice, InvoiceRun, RunItem, RunStatus
from app.billing.runs.billable import uninvoiced_sessions, unrated_cdrs
from app.db import utcnow
from app.extensions import db
from app.failures import failure_reason

CHUNK_SIZE = 500  # accounts per Celery task / inline batch, unless BILLING_CHUNK_SIZE says otherwise
MAX_BATCH = 500  # accounts per transaction: bounds the memory of a batch and the work a failure repeats
log = logging.getLogger(__name__)


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
