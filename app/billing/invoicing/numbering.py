"""Gapless, sequential invoice numbers per series (``INV-2026-000001``, credit notes ``CN-2026-000001``).

The number is taken by an ``UPDATE ... RETURNING`` on the series row inside the finalizing transaction. The
UPDATE holds a row lock (PostgreSQL) or the write lock (SQLite) until that transaction ends, and a rolled-back
transaction gives its number back: no gaps, no duplicates. On PostgreSQL concurrent finalizations queue up on
the row; SQLite (the embedded default) refuses a second writer that already read in its transaction ("database
is locked") instead of queueing it: that transaction rolls back and is retried (the invoice run retries a
failed chunk), so the numbers stay gapless there too (tests/billing/test_numbering_concurrency.py).
Take the number as the *last* step before commit to keep the lock short. The monthly run takes the numbers of a
whole chunk of accounts at once (:func:`take_numbers`): one lock per chunk instead of one per invoice.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app.billing.models import InvoiceKind, NumberSeries
from app.extensions import db

PREFIX = {InvoiceKind.INVOICE: "INV", InvoiceKind.CREDIT_NOTE: "CN"}


def series_for(kind: InvoiceKind, year: int) -> str:
    return f"{PREFIX[kind]}-{year}"


def _ensure_series(series: str) -> None:
    if db.session.scalar(select(NumberSeries.series).where(NumberSeries.series == series)) is not None:
        return
    try:
        with db.session.begin_nested():
            db.session.add(NumberSeries(series=series, next_number=1))
    except IntegrityError:
        pass  # created concurrently: fine


def number_text(series: str, sequence: int) -> str:
    return f"{series}-{sequence:06d}"


def take_numbers(series: str, count: int) -> int:
    """Consume the next ``count`` numbers of ``series`` in the current transaction with one UPDATE; returns the
    first (the batch owns ``first .. first + count - 1``). The row lock lasts until the transaction ends, so the
    caller must store exactly that many numbered documents in the same transaction (a rollback gives them all
    back) and commit soon."""
    if count < 1:
        raise ValueError("take at least one number")
    _ensure_series(series)
    first: int = db.session.execute(
        text(
            "UPDATE billing_number_series SET next_number = next_number + :count WHERE series = :series "
            "RETURNING next_number - :count"
        ),
        {"series": series, "count": count},
    ).scalar_one()
    return first


def take_number(series: str) -> tuple[int, str]:
    """Consume the next number of ``series`` in the current transaction; returns (sequence, formatted)."""
    sequence = take_numbers(series, 1)
    return sequence, number_text(series, sequence)
