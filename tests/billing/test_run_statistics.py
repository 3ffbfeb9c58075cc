"""A finished run tells PostgreSQL's planner about the invoices it wrote.

Every real-time authorization asks whether the account has an unpaid overdue invoice. The driver prepares that
statement, and PostgreSQL keeps the plan it made while ``billing_invoices`` was empty (a sequential scan looks
free) until the table's statistics change. After a first run of 16,568 invoices that plan read every invoice on
every authorization (1.3 billion rows at 300/s, bench_load_and_batch.py) until something ran ``ANALYZE``; with
autovacuum off, or a minute away, nothing did.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, text

from app.billing.models import Invoice, InvoiceLine
from app.db_bulk import refresh_grown_statistics
from app.extensions import db
from tests.billing.sessions import rated_session
from tests.billing.test_run_batches import OCT, _driver, _run

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="planner statistics (ANALYZE, pg_class.reltuples) are PostgreSQL's; SQLite plans without them",
)


def _planner_rows(table: str) -> float:
    return float(db.session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = :name"), {"name": table}))


def test_the_run_that_finishes_refreshes_the_statistics_of_the_invoices_it_wrote(app, db_session):
    for index in range(4):
        user, card = _driver()
        rated_session(user.account.id, card.id, OCT + dt.timedelta(days=index))
    db.session.commit()
    # A new e-MSP's database: the tables were analysed while they were empty.
    db.session.execute(text("ANALYZE billing_invoices"))
    db.session.execute(text("ANALYZE billing_invoice_lines"))
    assert _planner_rows("billing_invoices") == 0

    _run(app, "2026-10")

    invoices = db.session.scalar(select(func.count(Invoice.id)))
    lines = db.session.scalar(select(func.count(InvoiceLine.id)))
    assert invoices == 4 and lines >= 4
    assert _planner_rows("billing_invoices") == invoices
    assert _planner_rows("billing_invoice_lines") == lines


def test_statistics_are_refreshed_as_a_table_doubles_and_not_in_between(app):
    """What a run asks after each batch: one catalogue query, and ``ANALYZE`` only once a table has had more rows
    written since its last one than it then held. Committed for real (the statistics count committed work), on a
    table of the test's own."""
    grown = Table("statistics_probe", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))

    def write(rows: int) -> None:
        db.session.execute(insert(grown), [{"n": index} for index in range(rows)])
        db.session.execute(text("SELECT pg_stat_force_next_flush()"))  # counted now, not within 10 s
        db.session.commit()

    with app.app_context():
        grown.create(db.engine)
        try:
            db.session.execute(text("ANALYZE statistics_probe"))
            db.session.commit()
            assert _planner_rows("statistics_probe") == 0

            write(50)
            assert refresh_grown_statistics([grown], at_least=10) == ["statistics_probe"]
            assert _planner_rows("statistics_probe") == 50
            assert refresh_grown_statistics([grown], at_least=10) == []  # nothing written since

            write(30)  # 30 written, 50 held: not doubled
            assert refresh_grown_statistics([grown], at_least=10) == []
            write(40)  # 70 written since, 50 held
            assert refresh_grown_statistics([grown], at_least=10) == ["statistics_probe"]
            assert _planner_rows("statistics_probe") == 120
        finally:
            db.session.rollback()
            grown.drop(db.engine)
