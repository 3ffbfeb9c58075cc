"""The authorization log: one row per real-time authorization, with its reason (support reads it).

Writing the row inside the request would cost three database round trips (the insert, its commit and the
transaction's start) on every authorization, more than the decision itself. With ``AUTHORIZATION_LOG_BUFFERED``
(the default outside tests) rows go to a per-process buffer that a background thread writes every
``AUTHORIZATION_LOG_FLUSH_SECONDS`` in one multi-row insert (:mod:`app.batching`). What this trades: a process
killed without warning loses the rows of its last flush interval (a graceful stop flushes, see
``gunicorn.conf.py``); the answer to the charge point never depends on the row. If the database refuses a flush,
the rows are kept and retried with the next one, up to :data:`MAX_PENDING_ROWS`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine

from app.batching import BackgroundBatcher, app_batcher, flush_app_batcher
from app.charging.models import Authorization
from app.db import utcnow
from app.extensions import db

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
    return app_batcher(
        app, EXTENSION_KEY, lambda: BufferedLogWriter(db.engine, app.config["AUTHORIZATION_LOG_FLUSH_SECONDS"])
    )


def flush_pending(app: Flask) -> int:
    """Write what this process has buffered now (worker shutdown, tests). Returns the rows written."""
    return flush_app_batcher(app, EXTENSION_KEY)


class BufferedLogWriter(BackgroundBatcher[dict[str, Any]]):
    """The per-process buffer of log rows and the thread that writes them (:class:`app.batching.BackgroundBatcher`)."""

    def __init__(self, engine: Engine, flush_seconds: float) -> None:
        super().__init__("authorization-log-writer", self._write, flush_seconds, max_pending=MAX_PENDING_ROWS)
        self.engine = engine

    def _write(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # The answers did not depend on these rows: do not wait for the WAL flush.
                connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
            connection.execute(insert(Authorization), rows)


# --- reading the log (operations) -------------------------------------------------------------------------------


def answers_since(partner_ids: Sequence[int], since: dt.datetime) -> list[tuple[int, str, str, int]]:
    """How we answered these partners since ``since``: (partner id, answer, reason, count), counted by the
    database over the index on (partner_id, created_at), so only the window's rows are read, however long the
    log. The reasons are the decision's own texts (a handful per answer; a partner's location rule names the
    location), so the groups stay few."""
    if not partner_ids:
        return []
    rows = db.session.execute(
        select(Authorization.partner_id, Authorization.allowed, Authorization.reason, func.count())
        .where(Authorization.partner_id.in_(list(partner_ids)), Authorization.created_at >= since)
        .group_by(Authorization.partner_id, Authorization.allowed, Authorization.reason)
    )
    # partner_id is NULL only for rows of a deleted partner, which the IN above leaves out.
    return [(int(partner_id or 0), allowed, reason, count) for partner_id, allowed, reason, count in rows]
