"""Work handed off the request path in batches: a per-process buffer and a background thread that passes what
accumulated to a handler every few tenths of a second (and at a graceful exit).

Used where one round trip per request would cost more than the work itself and a batch is as good: the
authorization log (one multi-row INSERT instead of an insert and a commit per authorization) and the rating
of new CDRs (one Celery message for many CDRs instead of one each). The trade, stated where each is used: a
process killed without warning loses what it buffered since the last flush.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Batcher = TypeVar("Batcher", bound="BackgroundBatcher[Any]")


class BackgroundBatcher(Generic[Item]):
    """Buffers items and hands them, in order, to ``handle(batch)`` from a background thread every
    ``interval`` seconds. The thread starts with the first item in each process (gunicorn forks workers after
    the app is imported: a thread started before the fork would not exist in the worker). When ``handle``
    raises, the batch goes back in front and is retried with the next flush; beyond ``max_pending`` items the
    oldest are dropped (and logged), so a long outage cannot exhaust memory."""

    def __init__(
        self,
        name: str,
        handle: Callable[[list[Item]], None],
        interval: float,
        max_pending: int = 100_000,
        max_batch: int | None = None,
    ) -> None:
        self.name = name
        self.handle = handle
        self.interval = interval
        self.max_pending = max_pending
        self.max_batch = max_batch
        self._pending: deque[Item] = deque()
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._pid: int | None = None

    def add(self, item: Item) -> None:
        if self._pid != os.getpid():
            self._start()
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            log.error("%s: buffer full (%d items), dropped the oldest", self.name, self.max_pending)
        self._pending.append(item)  # deque.append is atomic: no lock on the request path

    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Hand everything buffered to the handler now (in batches of ``max_batch``). Returns the items handled;
        raises what the handler raised (the failed batch stays pending)."""
        handled = 0
        with self._flush_lock:
            while self._pending:
                batch: list[Item] = []
                while self._pending and (self.max_batch is None or len(batch) < self.max_batch):
                    batch.append(self._pending.popleft())
                try:
                    self.handle(batch)
                except Exception:
                    self._pending.extendleft(reversed(batch))  # back in front, in their order
                    raise
                handled += len(batch)
        return handled

    def _start(self) -> None:
        with self._start_lock:  # a threaded worker may add two items at once
            if self._pid == os.getpid():
                return
            self._pending.clear()  # items copied from the parent process by fork are the parent's to handle
            threading.Thread(target=self._run, name=self.name, daemon=True).start()
            _started.add(self)
            self._pid = os.getpid()

    def _run(self) -> None:
        stop = threading.Event()  # never set: the thread lives as long as its (daemon) process
        while not stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # keep the thread alive; the items stay pending for the next flush
                log.exception("%s: flush failed; %d items pending", self.name, len(self._pending))


_started: weakref.WeakSet[BackgroundBatcher[Any]] = weakref.WeakSet()


def app_batcher(app: Flask, key: str, make: Callable[[], Batcher]) -> Batcher:
    """The app's one batcher stored under ``key`` in ``app.extensions``, made by ``make`` on first use (one per
    app and process: its thread starts with the first item)."""
    batcher: Batcher | None = app.extensions.get(key)
    if batcher is None:
        batcher = app.extensions.setdefault(key, make())
    return batcher


def flush_app_batcher(app: Flask, key: str) -> int:
    """Hand over now what the app's batcher under ``key`` holds (worker shutdown, tests): how many items; 0 when
    the app never made one."""
    batcher: BackgroundBatcher[Any] | None = app.extensions.get(key)
    return batcher.flush() if batcher is not None else 0


@atexit.register
def _flush_at_exit() -> None:
    """A graceful stop (gunicorn worker exit, Celery shutdown, end of a CLI command) hands over what is
    buffered."""
    for batcher in list(_started):
        if batcher._pid != os.getpid():
            continue
        try:
            batcher.flush()
        except Exception:
            log.exception("%s: %d items lost at exit", batcher.name, batcher.pending())
