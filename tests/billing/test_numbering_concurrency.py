"""Gapless numbering under concurrency, on the configured database (PostgreSQL in CI's second run): workers take
numbers of one series in their own transactions at the same time, some roll back. The committed numbers must
be exactly 1..n — no duplicate, no gap — because a rolled-back transaction gives its numbers back.

PostgreSQL queues the workers on the series row. SQLite refuses a second writer at once ("database is locked")
instead of queueing it when both already read in their transaction; the transaction is rolled back, so its
numbers are never used, and the worker retries, as the invoice run retries a failed chunk."""

from __future__ import annotations

import random
import threading
import time
import uuid

from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError

from app.billing.invoicing.numbering import take_numbers
from app.billing.models import NumberSeries
from app.extensions import db


def test_concurrent_transactions_never_duplicate_or_skip_a_number(app):
    series = f"T{uuid.uuid4().hex[:8]}"
    committed: list[range] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with app.app_context():  # a session (and connection) of its own, outside any test transaction
                start.wait(timeout=10)
                for _ in range(8):
                    count = rng.randint(1, 3)
                    for _attempt in range(200):
                        try:
                            first = take_numbers(series, count)
                            if rng.random() < 0.3:
                                db.session.rollback()  # e.g. a chunk that failed: its numbers go back
                                break
                            db.session.commit()
                        except OperationalError:  # SQLite: another writer holds the lock
                            db.session.rollback()
                            time.sleep(rng.uniform(0.001, 0.01))
                            continue
                        with lock:
                            committed.append(range(first, first + count))
                        break
                db.session.remove()
        except BaseException as error:  # reported by the test thread below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert len(committed) >= 20  # most of the 48 steps committed: the check below is not vacuous
        taken = sorted(number for numbers in committed for number in numbers)
        assert taken == list(range(1, len(taken) + 1))
        with app.app_context():
            assert (
                db.session.scalar(select(NumberSeries.next_number).where(NumberSeries.series == series))
                == len(taken) + 1
            )
    finally:
        with app.app_context():
            db.session.execute(delete(NumberSeries).where(NumberSeries.series == series))
            db.session.commit()
            db.session.remove()
