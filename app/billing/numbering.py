"""Gapless, sequential invoice numbers per series (``INV-2026-000001``, credit notes ``CN-2026-000001``).

The number is taken by an ``UPDATE ... RETURNING`` on the series row inside the finalizing transaction. The
UPDATE holds a row lock (PostgreSQL) or the write lock (SQLite) until that transaction ends, so concurrent
finalizations queue up, and a rolled-back transaction gives its number back: no gaps, no duplicates.
Take the number as the *last* step before commit to keep the lock short.
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


def take_number(series: str) -> tuple[int, str]:
    """Consume the next number of ``series`` in the current transaction; returns (sequence, formatted)."""
    _ensure_series(series)
    sequence = db.session.execute(
        text("UPDATE billing_number_series SET next_number = next_number + 1 WHERE series = :series "
             "RETURNING next_number - 1"),
        {"series": series},
    ).scalar_one()
    return sequence, f"{series}-{sequence:06d}"
