"""The preview's figures composed in several processes (``flask billing run --dry-run --processes N``).

A preview composes every account's month with the code that makes the invoices (:mod:`app.billing.runs.figures`):
at 1,000,000 accounts a first run of nine months' sessions took 13.5 min in one process, most of it waiting on
PostgreSQL's reads of the sessions, and a month of 1.4 M sessions 164 s in two; N processes divide it by about N
where the database has the cores. Each process builds the app
once (as a Celery worker does), composes its parts in read-only transactions and hands back their sums; the
caller adds them up. The processes see only committed data: the driver commits the preview's ratings and holds
before it hands out the parts (:func:`app.billing.runs.driver.preview`).

Finalizing has its own way to many processes (the Celery workers share a run's chunks); the preview's parts need
answers back, which the Celery setup here does not keep (no result backend), hence processes of the command.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, current_app

from app.billing.runs.figures import FigureSums, PartsRunner, figure_sums

_app: Any = None  # one app per process, built by the pool's initializer


def _start_process(factory: Callable[[], Flask]) -> None:
    global _app
    _app = factory()  # the factory reads the same environment as the parent's


def _compose_part(task: tuple[str, list[int], dict[int, str]]) -> FigureSums:
    from app.extensions import db

    period, account_ids, failed = task
    with _app.app_context():
        try:
            return figure_sums(period, account_ids, failed)
        finally:
            db.session.rollback()  # it only read
            db.session.remove()


def in_processes(processes: int) -> PartsRunner:
    """A :data:`~app.billing.runs.figures.PartsRunner` over ``processes`` new processes (spawned, so each has a
    clean interpreter and its own database connections), started for one preview and ended after it. Each builds
    its app with the factory that built the current one (``create_app`` leaves itself in ``app.extensions``;
    a function, so the pool hands it over by name)."""
    factory = current_app.extensions["app_factory"]

    def run(period: str, work: list[tuple[list[int], dict[int, str]]]) -> Iterator[FigureSums]:
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes, initializer=_start_process, initargs=(factory,)) as pool:
            yield from pool.imap_unordered(_compose_part, [(period, ids, failed) for ids, failed in work])

    return run
