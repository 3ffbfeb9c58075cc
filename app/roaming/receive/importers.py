"""Import OCPI Location / Tariff arrays from files (open-data feeds such as the Dutch NDW snapshot).

The file is a JSON array of OCPI objects (or an OCPI envelope whose ``data`` is that array), plain or gzipped.
Objects go through the same validation and storage rules as the Receiver (``upsert_locations`` /
``store_tariffs``), in batches: each batch is one query for the objects we already hold plus one flush, and is
committed on its own, so a crash loses at most one batch and a re-run simply updates (idempotent by natural
key). A bad object is reported and skipped; it never aborts the file.

Locations: validation costs more than writing (a 70,000-location file: ~25 of its ~45 s), so a file of several
batches can be validated in worker processes (``workers=N``; off by default, see ``DEFAULT_WORKERS``), a few
batches ahead of the one being written (``validate_locations`` needs no database). Batches are still written and
committed one after the other, in file order, by this process: the outcome is that of the plain loop.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.db_bulk import refresh_grown_statistics, refresh_statistics
from app.extensions import db
from app.roaming.receive.location_store import (
    BatchResult,
    ValidatedLocations,
    store_locations,
    validate_locations,
)
from app.roaming.receive.location_writes import LOCATION_TABLES
from app.roaming.receive.tariffs import store_tariffs

DEFAULT_BATCH_SIZE = 500
# Worker processes validating Locations ahead of the writer: this machine's cores, at most 2 (the writer and the
# database server need the others), and none for a file of a few batches (starting one costs ~1 s).
MAX_WORKERS = 2
MIN_BATCHES_FOR_WORKERS = 4
# Off by default: measured on the shared 2-core machine (70,000 locations, PostgreSQL) the workers cost 55-62 CPU
# seconds against 33-34 in one process (pickling both ways, two interpreters), and one process already imports
# them in 45 s on a quiet machine. Ask for them (workers=N) where spare cores exist.
DEFAULT_WORKERS = 0


class ImportFileError(ValueError):
    """The file itself is unreadable or not an array of objects (as opposed to one bad object in it)."""


@dataclass
class ImportReport:
    total: int = 0
    stored: int = 0
    unchanged: int = 0  # of the stored: already exactly so, nothing written (locations)
    stale: int = 0
    errors: list[tuple[int, str | None, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.errors)


def read_ocpi_array(path: str | Path) -> list[Any]:
    """Read a JSON array (``.gz`` detected by its magic bytes, not only the name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        document = json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise ImportFileError(f"{path}: cannot read an OCPI JSON array: {exc}") from exc
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]  # an OCPI response envelope saved to a file
    if not isinstance(document, list):
        raise ImportFileError(f"{path}: expected a JSON array of OCPI objects")
    return document


def _batches(items: list[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def _run(
    items: list[Any],
    store: Callable[[list[Any]], BatchResult],
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> ImportReport:
    report = ImportReport(total=len(items))
    for start, batch in _batches(items, batch_size):
        result = store(batch)
        db.session.commit()  # the batch is the unit of work
        _add(report, result, start)
        if progress is not None:
            progress(min(start + batch_size, len(items)), len(items))
    return report


def import_locations(
    path: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import a Location array. Commits per batch (this is a batch job, not a service).

    ``workers``: processes validating batches ahead of the writer (default ``DEFAULT_WORKERS``: none; at most
    ``MAX_WORKERS`` are useful, and only for files of ``MIN_BATCHES_FOR_WORKERS`` batches or more)."""
    items = read_ocpi_array(path)
    batches = list(_batches(items, batch_size))
    if workers is None:
        workers = DEFAULT_WORKERS
    if len(batches) < MIN_BATCHES_FOR_WORKERS:
        workers = 0  # starting a worker costs ~1 s
    workers = min(workers, MAX_WORKERS, os.cpu_count() or 1)
    if workers <= 0:
        # Objects parsed here and dropped after: validation may keep their values (plain_json).
        validated: Iterator[ValidatedLocations] = (validate_locations(b, plain_json=True) for _, b in batches)
        return _store_validated(batches, validated, len(items), progress)
    # spawn: a fresh interpreter, none of this process's threads, locks or database connections.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return _store_validated(batches, _validated_ahead(pool, batches, workers * 2), len(items), progress)


def _validated_ahead(
    pool: ProcessPoolExecutor, batches: list[tuple[int, list[Any]]], ahead: int
) -> Iterator[ValidatedLocations]:
    """The batches validated by ``pool``, in order, at most ``ahead`` submitted beyond the one handed out (memory
    stays bounded by a few batches, whatever the file's size)."""
    pending: deque[Future[ValidatedLocations]] = deque()
    for _, batch in batches:
        pending.append(pool.submit(validate_locations, batch, plain_json=True))  # a copy travels to the worker
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _store_validated(
    batches: list[tuple[int, list[Any]]],
    validated: Iterator[ValidatedLocations],
    total: int,
    progress: Callable[[int, int], None] | None,
) -> ImportReport:
    report = ImportReport(total=total)
    for (start, batch), checked in zip(batches, validated, strict=True):
        result = store_locations(checked, partner=None)
        db.session.commit()  # the batch is the unit of work
        refresh_grown_statistics(LOCATION_TABLES)
        db.session.commit()
        _add(report, result, start)
        if progress is not None:
            progress(start + len(batch), total)
    refresh_statistics(LOCATION_TABLES)  # what the finder reads: its plans for the file's last locations too
    db.session.commit()
    return report


def _add(report: ImportReport, result: BatchResult, start: int) -> None:
    report.stored += result.stored
    report.unchanged += result.unchanged
    report.stale += result.stale
    report.errors.extend((index + start, oid, message) for index, oid, message in result.errors)


def import_tariffs(
    path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE, progress: Callable[[int, int], None] | None = None
) -> ImportReport:
    """Import a Tariff array (every distinct last_updated becomes a version). Commits per batch."""
    return _run(read_ocpi_array(path), lambda batch: store_tariffs(batch, partner=None), batch_size, progress)
