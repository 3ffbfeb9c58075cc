"""One pull run per cursor at a time.

Beat's periodic pull (``roaming.pull_all``), an operator's "pull now" (``roaming.pull_partner``) and
``flask roaming pull`` can meet on the same partner and module, and a slow partner can make one run outlast the
beat interval. Two runs on one cursor would page the same window twice, race on the same objects and overwrite
each other's cursor; so a run first takes its cursor, and a second run is refused at once instead of waiting.

On PostgreSQL the claim is an advisory lock held by a connection of its own (in autocommit: no transaction stays
open while the run pages): every worker machine sees it, and it goes away when the run ends or its process dies,
so a killed worker never leaves a cursor locked. Elsewhere (SQLite: one machine, the embedded default) a claim
is held by this process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.extensions import db

log = logging.getLogger(__name__)

# The advisory lock space of pull runs ("PULL" in ASCII): the second key is the cursor's id.
PULL_LOCK_SPACE = 0x50554C4C

_local_runs: set[int] = set()
_local_runs_lock = threading.Lock()


@contextmanager
def exclusive_run(cursor_id: int) -> Iterator[bool]:
    """Hold the run of cursor ``cursor_id`` for the ``with`` block; yields False when another run holds it."""
    if db.engine.dialect.name == "postgresql":
        with _advisory_lock(cursor_id) as held:
            yield held
        return
    with _local_runs_lock:
        held = cursor_id not in _local_runs
        _local_runs.add(cursor_id)
    try:
        yield held
    finally:
        if held:
            with _local_runs_lock:
                _local_runs.discard(cursor_id)


@contextmanager
def _advisory_lock(cursor_id: int) -> Iterator[bool]:
    keys = {"space": PULL_LOCK_SPACE, "key": cursor_id}
    # A connection of its own from the engine (``.engine``: under the tests' fixture db.engine is a Connection).
    connection = db.engine.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:space, :key)"), keys))
        try:
            yield held
        finally:
            if held:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), keys)
                except DBAPIError:
                    # A session lock outlives a connection returned to the pool: this one must not go back.
                    log.warning("pull lock of cursor %s: unlock failed, connection dropped", cursor_id)
                    connection.invalidate()
    finally:
        connection.close()
