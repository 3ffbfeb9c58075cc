"""Fault: a Celery worker killed with SIGKILL in the middle of a chunk of the invoice run (issue 17, "Faults, as
tests in the suite").

The run is started as finance starts it (``runs.driver.finalize``: its accounts go to the workers as
``billing.finalize_chunk`` tasks on Redis). The test holds the invoice number series row locked, so the worker's
chunks compose and write their invoices and then wait for their numbers inside their open transactions; the test
kills the worker there (the whole process: a machine lost, nothing said to Redis), releases the lock, and starts a
second worker. The dead worker's tasks were taken but never acknowledged (``task_acks_late``): Redis gives them
back once ``CELERY_BROKER_VISIBILITY_TIMEOUT`` has passed (2 s here, 30 min in production: docs/deploy.md), the
second worker runs them again (idempotent: items taken ``FOR UPDATE SKIP LOCKED``, done ones skipped) and the last
chunk completes the run. Then: every session invoiced exactly once, one invoice per account, numbers 1..N without a
gap, the run FINALIZED with every account done.

PostgreSQL only (skipped on SQLite, see the mark). Redis: the server of ``CELERY_BROKER_URL`` (CI sets it), else
the local default, in a database of the test's own (``FAULTS_REDIS_DB``, default 5): a worker with a visibility
timeout of 2 s puts back *every* task unacknowledged for 2 s in its Redis database, other tests' included.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
import redis
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from app import create_app
from app.audit.services import Actor
from app.billing.models import Invoice, InvoiceLine, InvoiceRun, NumberSeries, RunItem, RunStatus
from app.billing.runs import driver
from app.billing.runs import services as runs
from app.db import utcnow
from app.extensions import celery, db
from app.jobs import init_celery
from app.mail import MAX_SEND_RETRIES
from app.plans.services import seed_default_plans
from app.rating.models import SessionCharge
from tests.billing.sessions import rated_session
from tests.billing.test_runs import OCT, _driver
from tests.browser.conftest import _wipe_tables
from tests.helpers import listens

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = 12
CHUNK = 4  # three chunks; the first worker takes two at once (two threads), the third waits in the queue
VISIBILITY_TIMEOUT = 2  # seconds; production: 1800


def _redis_url() -> str:
    """The broker's Redis server (``CELERY_BROKER_URL`` when it is Redis, else the local default), in a database of
    this test's own."""
    configured = os.environ.get("CELERY_BROKER_URL") or ""
    base = urlparse(configured if configured.startswith("redis") else "redis://127.0.0.1:6379/0")
    return urlunparse(base._replace(path=f"/{os.environ.get('FAULTS_REDIS_DB', '5')}"))


REDIS = _redis_url()


def _wait_for(
    condition: Callable[[], object], what: str, timeout: float = 30, alive: Sequence[subprocess.Popen[bytes]] = ()
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for process in alive:
            assert process.poll() is None, f"{what}: the worker stopped with {process.returncode}"
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Worker:
    """``celery -A app.worker worker`` as production runs it (``--pool threads``), on the test's queue."""

    def __init__(self, name: str, env: dict[str, str], queue: str, folder: Path) -> None:
        self.log = folder / f"{name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "app.worker", "worker", "--pool", "threads",
                 "--concurrency", "2", "--queues", queue, "--hostname", f"{name}-{queue}@%h", "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        _wait_for(lambda: "ready." in self.text(), f"{self.log.name} ready\n{self.text()}", 60, [self.process])

    def task_ids(self, event: str) -> set[str]:
        return set(re.findall(rf"billing\.finalize_chunk\[([0-9a-f-]+)\] {event}", self.text()))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def test_the_visibility_timeout_outlasts_every_retry_countdown(app: Flask) -> None:
    """A worker holds a task retried with a countdown unacknowledged until it is due: a countdown longer than the
    visibility timeout would have Redis hand the task to a second worker meanwhile (sent twice). Mail is the one
    task retried with a countdown; collection does not retry (an attempt that met a Stripe outage is resumed by
    the periodic ``billing.resume_collection``, a new task each time)."""
    longest = 60 * 2 ** (MAX_SEND_RETRIES - 1)  # app.mail.send_rendered_mail waits 60 * 2**retries before each retry
    try:
        create_app("test", CELERY_BROKER_URL=REDIS)  # as a worker is configured (nothing is sent)
        timeout = celery.conf.broker_transport_options["visibility_timeout"]
    finally:
        init_celery(app)  # the Celery instance is process-wide: back to the session app, eager
    assert timeout == app.config["CELERY_BROKER_VISIBILITY_TIMEOUT"]
    assert timeout > longest, (timeout, longest)


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the kill must land while the chunk waits inside its transaction: the test holds the number series row, "
    "which PostgreSQL queues the chunk on (SQLite refuses the write at once instead); `make test` runs this on "
    "PostgreSQL",
)
def test_a_worker_killed_mid_chunk_is_replaced_and_the_run_completes_gapless(app: Flask, tmp_path: Path) -> None:
    if not os.environ.get("CELERY_BROKER_URL") and not listens(REDIS):
        pytest.skip("no CELERY_BROKER_URL and no local Redis")  # CI always has Redis: there this runs
    assert listens(REDIS), f"Redis at {REDIS} does not answer"
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    series = f"INV-{utcnow().year}"
    queue = f"test-killed-{uuid.uuid4().hex[:8]}"  # never mixed with another test's or run's tasks
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": REDIS,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MAIL_SERVER": "",
    }
    broker_app = create_app(
        "test",
        SQLALCHEMY_DATABASE_URI=url,
        CELERY_BROKER_URL=REDIS,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        BILLING_CHUNK_SIZE=CHUNK,
        MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
    )
    observer = create_engine(url)  # connections of the test's own, outside the apps
    workers: list[Worker] = []
    try:
        with broker_app.app_context():
            seed_default_plans()
            for _ in range(ACCOUNTS):
                account, card = _driver()
                rated_session(account.id, card.id, OCT)
            db.session.add(NumberSeries(series=series, next_number=1))
            db.session.commit()
            actor = Actor.system("finance-test")
            run = driver.approve(driver.preview("2026-10", actor), actor)
            run_id = run.id

        first = Worker("first", env, queue, tmp_path)
        workers.append(first)
        first.wait_ready()

        locker = observer.connect()
        lock = locker.begin()
        locker.execute(
            text("SELECT next_number FROM billing_number_series WHERE series = :s FOR UPDATE"), {"s": series}
        )

        with broker_app.app_context():
            run = db.session.get_one(InvoiceRun, run_id)
            driver.finalize(run, actor, "monthly run")  # as finance's button: the chunks go to the workers
            db.session.remove()

        def chunks_wait_for_numbers() -> int:
            with observer.connect() as connection:
                return int(
                    connection.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE billing_number_series%'"
                        )
                    ).scalar_one()
                )

        # Both threads of the first worker are inside a chunk's transaction, waiting for their numbers.
        _wait_for(lambda: chunks_wait_for_numbers() == 2, "two chunks waiting for their numbers", 30, [first.process])
        taken = first.task_ids("received")
        assert len(taken) == 2, first.text()
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        killed_at = time.monotonic()
        lock.rollback()  # the dead worker's transactions get the row, fail to answer their client, and roll back
        locker.close()

        def nobody_waits() -> bool:
            with observer.connect() as connection:
                return not connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND query ILIKE 'UPDATE billing_number_series%' AND state <> 'idle'"
                    )
                ).scalar()

        _wait_for(nobody_waits, "the killed worker's transactions to end")
        with observer.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM billing_invoices")).scalar() == 0  # nothing kept
            assert (
                connection.execute(
                    text("SELECT next_number FROM billing_number_series WHERE series = :s"), {"s": series}
                ).scalar()
                == 1
            )  # nor a number used
            assert (
                connection.execute(
                    text("SELECT count(*) FROM billing_run_items WHERE run_id = :r AND status = 'pending'"),
                    {"r": run_id},
                ).scalar()
                == ACCOUNTS
            )

        # Past the visibility timeout, the second worker's first sweep gives it the dead worker's two tasks.
        time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT + 0.5 - time.monotonic()))
        second = Worker("second", env, queue, tmp_path)
        workers.append(second)

        def run_finalized() -> bool:
            with observer.connect() as connection:
                status = connection.execute(
                    text("SELECT status FROM billing_runs WHERE id = :r"), {"r": run_id}
                ).scalar()
            return status == RunStatus.FINALIZED.value

        _wait_for(run_finalized, f"the run to be finalized\n{first.text()}\n{second.text()}", 60, [second.process])

        # The very tasks the dead worker had taken were run again by the second worker.
        assert taken <= second.task_ids("succeeded"), second.text()
        with broker_app.app_context():
            finished = db.session.get_one(InvoiceRun, run_id)
            assert finished.status == RunStatus.FINALIZED
            assert finished.results["done"] == ACCOUNTS
            assert (finished.results["pending"], finished.results["failed"]) == (0, 0)
            assert finished.results["invoices"] == ACCOUNTS
            assert runs.progress(finished)["done"] == ACCOUNTS
            items = db.session.execute(select(RunItem.account_id, RunItem.invoice_id).where(RunItem.run_id == run_id))
            invoice_of = dict(items.all())
            invoices = db.session.scalars(select(Invoice).where(Invoice.run_id == run_id)).all()
            assert sorted(invoice.account_id for invoice in invoices) == sorted(invoice_of)  # one per account
            assert {invoice.account_id: invoice.id for invoice in invoices} == invoice_of
            assert sorted(invoice.sequence for invoice in invoices) == list(range(1, ACCOUNTS + 1))  # no gap
            assert len({invoice.number for invoice in invoices}) == ACCOUNTS
            assert db.session.scalar(select(NumberSeries.next_number).where(NumberSeries.series == series)) == (
                ACCOUNTS + 1
            )
            invoiced = list(
                db.session.scalars(
                    select(InvoiceLine.session_charge_id).where(InvoiceLine.session_charge_id.is_not(None))
                )
            )
            assert sorted(invoiced) == sorted(db.session.scalars(select(SessionCharge.id)))  # each session once
            assert db.session.scalar(select(func.count(InvoiceLine.id))) == ACCOUNTS  # no line twice
            assert runs.uninvoiced_sessions("2026-10") == []
    finally:
        for worker in workers:
            worker.stop()
        observer.dispose()
        with redis.Redis.from_url(REDIS) as broker:  # this run's queue and kombu's bindings of it
            for key in list(broker.scan_iter(match=f"*{queue}")):
                broker.delete(key)
        _wipe_tables(app)
        init_celery(app)  # the Celery instance is process-wide: back to the session app, eager
