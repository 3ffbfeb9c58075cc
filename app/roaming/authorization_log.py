"""The authorization log: one row per real-time authorization, with its reason (support reads it).

Writing the row inside the request would cost three database round trips (the insert, its commit and the
transaction's start) on every authorization, more than the decision itself. With ``AUTHORIZATION_LOG_BUFFERED``
(the default outside tests) rows go to a per-process buffer that a background thread writes every
``AUTHORIZATION_LOG_FLUSH_SECONDS`` in one multi-row insert. What this trades: a process killed without warning
loses the rows of its last flush interval (a graceful stop flushes, see ``gunicorn.conf.py`` and ``atexit``);
the answer to the charge point never depends on the row. If the database refuses a flush, the rows are kept
and retried with the next one, up to :data:`MAX_PENDING_ROWS`.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from typing import Any

from flask import Flask, current_app
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from app.db import utcnow
from app.extensions import db
from app.roaming.models import Authorization

log = logging.getLogger(__name__)

MAX_PENDING_ROWS = 100_000  # about a minute at national peak; beyond it the oldest rows are dropped (logged)
EXTENSION_KEY = "authorization_log"


def record(**values: Any) -> None:
    """Log one authorization (columns of :class:`Authorization` except ``id``/``created_at``)."""
    values["created_at"] = utcnow()
    if current_app.config.get("AUTHORIZATION_LOG_BUFFERED"):
        writer_for(current_app).add(values)
        return
    # Inside the caller's transaction: the request commits it.
    if db.session.get_bind().dialect.name == "postgresql":
        # The answer does not depend on the row: do not wait for the WAL flush (this transaction only).
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    db.session.execute(insert(Authorization).values(**values))


def writer_for(app: Flask) -> BufferedLogWriter:
    writer = app.extensions.get(EXTENSION_KEY)
    if writer is None:
        writer = app.extensions.setdefault(
            EXTENSION_KEY, BufferedLogWriter(db.engine, app.config["AUTHORIZATION_LOG_FLUSH_SECONDS"]))
    return writer


def flush_pending(app: Flask) -> int:
    """Write what this process has buffered now (worker shutdown, tests). Returns the rows written."""
    writer = app.extensions.get(EXTENSION_KEY)
    return writer.flush() if writer is not None else 0


_started_writers: weakref.WeakSet[BufferedLogWriter] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """A graceful stop (gunicorn worker exit, Celery shutdown, end of a CLI command) writes what is buffered."""
    for writer in list(_started_writers):
        if writer._pid != os.getpid():
            continue
        try:
            writer.flush()
        except Exception:
            log.exception("authorization log: %d rows could not be written at exit", len(writer._pending))


class BufferedLogWriter:
    """A buffer of log rows and the thread that writes them. The thread starts with the first row in each
    process (gunicorn forks workers after the app is imported: a thread started before the fork would not
    exist in the worker)."""

    def __init__(self, engine: Engine, flush_seconds: float) -> None:
        self.engine = engine
        self.flush_seconds = flush_seconds
        self._pending: deque[dict[str, Any]] = deque()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def add(self, values: dict[str, Any]) -> None:
        if self._pid != os.getpid():
            self._start()
        if len(self._pending) >= MAX_PENDING_ROWS:
            self._pending.popleft()
            log.error("authorization log buffer full (%d rows): dropped the oldest row", MAX_PENDING_ROWS)
        self._pending.append(values)  # deque.append is atomic: no lock on the request path

    def _start(self) -> None:
        with self._start_lock:  # a threaded worker may log two rows at once
            if self._pid == os.getpid():
                return
            self._pending.clear()  # rows copied from the parent process by fork are the parent's to write
            self._thread = threading.Thread(target=self._run, name="authorization-log-writer", daemon=True)
            self._thread.start()
            _started_writers.add(self)
            self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # keep the thread alive: the rows stay pending and go with the next flush
                log.exception("authorization log flush failed; %d rows pending", len(self._pending))

    def flush(self) -> int:
        with self._flush_lock:
            rows: list[dict[str, Any]] = []
            while self._pending:
                rows.append(self._pending.popleft())
            if not rows:
                return 0
            try:
                with self.engine.begin() as connection:
                    if connection.dialect.name == "postgresql":
                        connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
                    connection.execute(insert(Authorization), rows)
            except Exception:
                self._pending.extendleft(reversed(rows))  # back in front, in their order
                raise
            return len(rows)
