"""The pieces every part of ``flask demo generate`` shares: its options and report, the chunked writer with ids
allocated in Python, what a session needs to know of a connector, and month arithmetic."""

from __future__ import annotations

import calendar
import datetime as dt
import queue
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select, text

from app.db_bulk import copy_rows, insert_lines, insert_rows
from app.demo import generate_catalogue as catalogue
from app.extensions import db
from app.plans.services import billing_zone

CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class GenerateOptions:
    accounts: int = 1_000
    cards_per_account: Decimal = Decimal("1.5")  # an average: each account gets the floor or the ceiling
    cdrs: int = 10_000
    locations: int = 500
    month: str = ""  # YYYY-MM, the last month with sessions
    months: int = 1  # sessions spread over this many months, ending with ``month``
    seed: int = 1


@dataclass
class TableFigure:
    rows: int = 0
    seconds: float = 0.0  # writing only (the rows' building is in the phase time)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class GenerateReport:
    tables: dict[str, TableFigure] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # building + writing, seconds
    seconds: float = 0.0
    first_account_id: int = 0
    outliers: dict[str, int] = field(default_factory=dict)  # huge_kwh, zero_kwh, very_long, late
    indexes_deferred: bool = False  # sessions' and CDRs' indexes and foreign keys built at the end (empty tables)


@dataclass(frozen=True)
class ConnectorRef:
    """What a session needs to know of a connector (kept in memory while the sessions are made)."""

    cpo: int  # index in CPOS
    partner_id: int
    location_ocpi_id: str
    evse_uid: str
    evse_id: str
    connector_id: str
    standard: str
    connector_format: str
    power_type: str
    kw: int
    tariff_version_id: int
    tariff_id: str
    tariff_kind: str
    name: str
    address: str
    city: str
    postal_code: str
    country: str  # alpha-2
    latitude: str
    longitude: str


@dataclass
class _Chunk:
    """Rows for one table: as dicts, or as COPY text lines of ``columns``."""

    table: Table
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    lines: list[str] | None = None


class Writer:
    """Rows into tables in chunks, with the time spent writing per table, ids allocated after the maximum.

    On PostgreSQL the chunks are written by a thread of the writer's own while the caller builds the next ones:
    the server takes in one chunk (parsing, WAL, indexes) on the other core while this process makes the next,
    instead of each waiting for the other. At most two chunks wait in line. The thread has the session's
    connection to itself while it writes: anything else that needs the database first waits for it to be done
    (:meth:`first_id` for a table it has not seen, :meth:`finish`, :meth:`close`). A failed write is raised in the
    caller at its next call."""

    def __init__(self, report: GenerateReport) -> None:
        self.report = report
        self.next_ids: dict[str, int] = {}
        self._queue: queue.Queue[_Chunk | None] | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._discard = False

    def first_id(self, table: Table, count: int) -> int:
        """Reserve ``count`` ids of ``table``; returns the first."""
        if table.name not in self.next_ids:
            self.drain()
            self.next_ids[table.name] = (db.session.scalar(select(func.max(table.c.id))) or 0) + 1
        first = self.next_ids[table.name]
        self.next_ids[table.name] = first + count
        return first

    def write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Rows as dicts (``app.db_bulk.insert_rows``)."""
        self._hand_over(_Chunk(table, rows=rows))

    def write_lines(self, table: Table, columns: tuple[str, ...], lines: list[str]) -> None:
        """Rows already written as COPY text (``app.db_bulk.insert_lines``)."""
        self._hand_over(_Chunk(table, columns=columns, lines=lines))

    def _hand_over(self, chunk: _Chunk) -> None:
        if db.session.get_bind().dialect.name != "postgresql":
            self._write(chunk, None)
            return
        self._raise_failure()
        if self._queue is None:
            self._queue = queue.Queue(maxsize=2)
            driver_connection = db.session.connection().connection.driver_connection
            self._thread = threading.Thread(
                target=self._run, args=(self._queue, driver_connection), name="demo-generate-writer", daemon=True
            )
            self._thread.start()
        self._queue.put(chunk)

    def _write(self, chunk: _Chunk, driver_connection: Any) -> None:
        figure = self.report.tables.setdefault(chunk.table.name, TableFigure())
        started = time.perf_counter()
        if chunk.lines is not None:
            for start in range(0, len(chunk.lines), CHUNK_ROWS):
                insert_lines(chunk.table, chunk.columns, chunk.lines[start : start + CHUNK_ROWS], driver_connection)
            figure.rows += len(chunk.lines)
        else:
            for start in range(0, len(chunk.rows), CHUNK_ROWS):
                if driver_connection is None:
                    insert_rows(chunk.table, chunk.rows[start : start + CHUNK_ROWS])
                else:
                    copy_rows(chunk.table, chunk.rows[start : start + CHUNK_ROWS], driver_connection)
            figure.rows += len(chunk.rows)
        figure.seconds += time.perf_counter() - started

    def _run(self, pending: queue.Queue[_Chunk | None], driver_connection: Any) -> None:
        while (chunk := pending.get()) is not None:
            try:
                if self._failure is None and not self._discard:  # after a failure, only empty the line
                    self._write(chunk, driver_connection)
            except BaseException as error:  # handed to the caller's thread, raised there
                self._failure = error
            finally:
                pending.task_done()
        pending.task_done()

    def drain(self) -> None:
        """Wait until every chunk handed over is written; raise what failed."""
        if self._queue is not None:
            self._queue.join()
        self._raise_failure()

    def close(self, discard: bool = False) -> None:
        """Stop the writing thread after the chunks in line (``discard``: after the one being written, when the
        caller gave up and will roll back); safe to call twice, or after a failure."""
        self._discard = discard
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = self._thread = None

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def finish(self, analysed: frozenset[str] = frozenset()) -> None:
        """Move the sequences past the ids we took (PostgreSQL; SQLite follows the rows) and refresh the planner's
        statistics (except of the tables in ``analysed``), so the rating and invoice runs that follow plan for the
        sizes they meet."""
        self.drain()
        self.close()
        if db.session.get_bind().dialect.name != "postgresql":
            return
        for name in self.next_ids:
            db.session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM \"{name}\"))")  # noqa: S608 (our table names)
            )
            if name not in analysed:
                db.session.execute(text(f'ANALYZE "{name}"'))


def table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (UTC) of the month in the billing time zone, as the invoice run counts it."""
    year, number = int(month[:4]), int(month[5:])
    zone = billing_zone()
    start = dt.datetime(year, number, 1, tzinfo=zone)
    end = dt.datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def shift_month(month: str, delta: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:]) - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def weighted_cities(rng: random.Random, count: int) -> list[int]:
    weights = [city.weight for city in catalogue.CITIES]
    return rng.choices(range(len(catalogue.CITIES)), weights=weights, k=count)


def chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def days_in_month(month: str) -> int:
    return calendar.monthrange(int(month[:4]), int(month[5:]))[1]
