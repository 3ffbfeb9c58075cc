"""A real Celery worker (another process) finalizes a run through Redis, sharing it out in chunks.

Runs when a Redis broker is reachable: ``CELERY_BROKER_URL`` (CI sets it to the local Redis), else the local
default ``redis://127.0.0.1:6379/0`` if it answers.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from app import create_app
from app.audit.services import Actor
from app.billing.models import Invoice, InvoiceRun, RunStatus
from app.billing.runs import services as runs
from app.billing.runs.tasks import finalize_chunk
from app.cards import services as card_services
from app.extensions import db
from app.plans import services as plan_services
from tests.billing.sessions import rated_session
from tests.factories import make_user
from tests.helpers import listens

ROOT = Path(__file__).resolve().parents[2]


CONFIGURED = os.environ.get("CELERY_BROKER_URL")
BROKER = CONFIGURED or "redis://127.0.0.1:6379/0"


# Skipped only on a machine with no broker configured and no local Redis; a configured broker that does not
# answer is a failure (CI sets CELERY_BROKER_URL to its local Redis).
@pytest.mark.skipif(not CONFIGURED and not listens(BROKER), reason="no CELERY_BROKER_URL and no local Redis")
def test_worker_process_finalizes_a_run(app, tmp_path):
    assert listens(BROKER), f"CELERY_BROKER_URL={BROKER} does not answer"
    queue = f"test-{uuid.uuid4().hex[:8]}"  # our own queue: parallel runs and other workers never mix
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    broker_app = create_app(
        "test", SQLALCHEMY_DATABASE_URI=database, CELERY_BROKER_URL=BROKER, CELERY_TASK_DEFAULT_QUEUE=queue
    )
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": BROKER,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    # Two workers share the run on PostgreSQL, as several machines would. SQLite (the embedded default, one
    # process) refuses a second writer instead of queueing it, so there one worker does the whole run.
    shared = database.startswith("postgresql")
    logs = [tmp_path / f"worker{n}.log" for n in ((1, 2) if shared else (1,))]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "app.worker",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "-n",
                f"w{n}-{queue}@%h",
                "-Q",
                queue,
                "--prefetch-multiplier",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for n, log in enumerate(logs, 1)
    ]

    def log_text() -> str:
        return "\n".join(log.read_text() for log in logs)

    try:
        deadline = time.monotonic() + 60
        while not all("ready." in log.read_text() for log in logs):  # both listen before anything is queued
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers), log_text()
            time.sleep(0.2)
        with broker_app.app_context():
            plan_services.seed_default_plans()
            accounts = []
            for n in range(6):
                user = make_user(email=f"worker{n}@example.com")
                for stretch in plan_services.history(user.account.id):
                    stretch.starts_at = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
                card = card_services.issue_app_token(user.account, Actor.of(user))
                rated_session(user.account.id, card.id, dt.datetime(2026, 10, 5, 9, tzinfo=dt.UTC))
                accounts.append(user.account.id)
            db.session.commit()
            run = runs.preview("2026-10", Actor.system("test"))
            runs.approve(run, Actor.system("test"))
            runs.start_finalizing(run, Actor.system("test"))
            db.session.commit()
            for chunk in runs.pending_chunks(run, size=1):  # six chunks
                finalize_chunk.delay(run.id, chunk)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                db.session.rollback()  # end the read transaction: never hold a lock while the worker writes
                if db.session.get(InvoiceRun, run.id).status == RunStatus.FINALIZED:
                    break
                assert all(worker.poll() is None for worker in workers), log_text()
                time.sleep(0.5)
            db.session.expire_all()
            finished = db.session.get(InvoiceRun, run.id)
            assert finished.status == RunStatus.FINALIZED, log_text()
            numbers = sorted(db.session.scalars(select(Invoice.sequence)))
            assert numbers == [1, 2, 3, 4, 5, 6]  # gapless, also when two workers took numbers
            shares = [log.read_text().count("succeeded") for log in logs]
            assert all(shares), f"a worker did none of the chunks: {shares}\n{log_text()}"
            assert sorted(db.session.scalars(select(Invoice.account_id))) == sorted(accounts)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
        with broker_app.app_context():
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(delete(table))
            db.session.commit()
        create_app("test")  # leave the shared Celery instance in eager mode for the tests that follow
