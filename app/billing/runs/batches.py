"""The units of work of an invoice run, each committed: a batch of accounts, a worker's chunk, completing the run.

The run services (``runs.services``) compose and store in the current transaction; these commit it, so a crash
leaves each batch wholly done or wholly pending. ``runs.driver`` runs them inline, the ``billing.finalize_chunk``
task on a worker (a module of its own so the tasks need not import the driver, which hands tasks out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import cast

from sqlalchemy import Table

from app.billing.models import Invoice, InvoiceLine
from app.billing.runs import items
from app.billing.runs import services as runs
from app.db_bulk import refresh_grown_statistics, refresh_statistics
from app.extensions import db
from app.failures import failure_reason

log = logging.getLogger(__name__)

# A run grows these many times over (the first run from nothing). Every authorization asks about an account's
# invoices (the standing check), and its prepared plan, made while the table was small, then scanned every
# invoice on every request until the statistics changed: 300 authorizations/s beside a first run of 16,568
# invoices read 1.3 billion rows, and a CDR import beside them ran at a quarter of its speed. So a run refreshes
# the statistics as the tables double, and when it completes.
INVOICE_TABLES = (cast(Table, Invoice.__table__), cast(Table, InvoiceLine.__table__))


def process_items(item_ids: Iterable[int], on_done: Callable[[], None] | None = None) -> None:
    """Finalize the accounts of these run items: one committed transaction per batch of accounts
    (``runs.finalize_items``), so a crash leaves each batch wholly done or wholly pending. If a batch fails,
    its accounts are retried one by one in their own transactions, so one bad account fails alone (status
    ``failed`` with why, logged) and the others are invoiced; an account whose month cannot be composed fails
    inside its batch without failing the batch (``runs.finalize_items``). A failed account takes no invoice
    number: the numbers are taken in the transaction that is rolled back. ``on_done`` is called once per
    account handled."""
    ids = list(item_ids)
    for start in range(0, len(ids), items.MAX_BATCH):
        batch = ids[start : start + items.MAX_BATCH]
        try:
            runs.finalize_items(batch)
            db.session.commit()
        except Exception as error:
            db.session.rollback()
            if len(batch) == 1:
                _fail_item(batch[0], error)
            else:
                log.warning(
                    "invoice run: a batch of %s accounts failed (%s); each is retried on its own",
                    len(batch),
                    failure_reason(error),
                )
                _one_by_one(batch, on_done)
                continue
        else:
            refresh_grown_statistics(INVOICE_TABLES)
            db.session.commit()
        if on_done:
            for _ in batch:
                on_done()


def _one_by_one(item_ids: list[int], on_done: Callable[[], None] | None) -> None:
    """After a failed batch: each account in its own transaction, so only the bad ones fail."""
    for item_id in item_ids:
        try:
            runs.finalize_items([item_id])
            db.session.commit()
        except Exception as error:
            db.session.rollback()
            _fail_item(item_id, error)
        if on_done:
            on_done()


def _fail_item(item_id: int, error: Exception) -> None:
    items.mark_item_failed(item_id, error)
    db.session.commit()


def complete_run(run_id: int) -> bool:
    """Mark the run finalized if every account is done (``items.complete_if_done``), committed."""
    changed = items.complete_if_done(run_id)
    db.session.commit()
    if changed:
        refresh_statistics(INVOICE_TABLES)  # the run's last invoices too
        db.session.commit()
    return changed


def finalize_chunk(run_id: int, item_ids: list[int]) -> None:
    """A worker's unit: finalize a chunk of the run's items, then complete the run if it was the last."""
    process_items(item_ids)
    complete_run(run_id)
