"""Import OCPI Location / Tariff arrays from files (open-data feeds such as the Dutch NDW snapshot).

The file is a JSON array of OCPI objects (or an OCPI envelope whose ``data`` is that array), plain or gzipped.
Objects go through the same validation and storage rules as the Receiver (``upsert_locations`` /
``store_tariffs``), in batches: each batch is one query for the objects we already hold plus one flush, and is
committed on its own, so a crash loses at most one batch and a re-run simply updates (idempotent by natural
key). A bad object is reported and skipped; it never aborts the file.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.extensions import db
from app.roaming.receive.locations import BatchResult, upsert_locations
from app.roaming.receive.tariffs import store_tariffs

DEFAULT_BATCH_SIZE = 500


class ImportFileError(ValueError):
    """The file itself is unreadable or not an array of objects (as opposed to one bad object in it)."""


@dataclass
class ImportReport:
    total: int = 0
    stored: int = 0
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
        report.stored += result.stored
        report.stale += result.stale
        report.errors.extend((index + start, oid, message) for index, oid, message in result.errors)
        if progress is not None:
            progress(min(start + batch_size, len(items)), len(items))
    return report


def import_locations(
    path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE, progress: Callable[[int, int], None] | None = None
) -> ImportReport:
    """Import a Location array. Commits per batch (this is a batch job, not a service)."""
    return _run(read_ocpi_array(path), lambda batch: upsert_locations(batch, partner=None), batch_size, progress)


def import_tariffs(
    path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE, progress: Callable[[int, int], None] | None = None
) -> ImportReport:
    """Import a Tariff array (every distinct last_updated becomes a version). Commits per batch."""
    return _run(read_ocpi_array(path), lambda batch: store_tariffs(batch, partner=None), batch_size, progress)
