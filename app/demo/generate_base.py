"""The pieces every part of ``flask demo generate`` shares: its options and report, the chunked writer with ids
allocated in Python, what a session needs to know of a connector, and month arithmetic."""

from __future__ import annotations

import calendar
import datetime as dt
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select, text

from app.db_bulk import insert_rows
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


class Writer:
    """Rows into tables in chunks, with the time spent writing per table, ids allocated after the maximum."""

    def __init__(self, report: GenerateReport) -> None:
        self.report = report
        self.next_ids: dict[str, int] = {}

    def first_id(self, table: Table, count: int) -> int:
        """Reserve ``count`` ids of ``table``; returns the first."""
        if table.name not in self.next_ids:
            self.next_ids[table.name] = (db.session.scalar(select(func.max(table.c.id))) or 0) + 1
        first = self.next_ids[table.name]
        self.next_ids[table.name] = first + count
        return first

    def write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        figure = self.report.tables.setdefault(table.name, TableFigure())
        started = time.perf_counter()
        for start in range(0, len(rows), CHUNK_ROWS):
            insert_rows(table, rows[start : start + CHUNK_ROWS])
        figure.seconds += time.perf_counter() - started
        figure.rows += len(rows)

    def finish(self) -> None:
        """Move the sequences past the ids we took (PostgreSQL; SQLite follows the rows) and refresh the planner's
        statistics, so the rating and invoice runs that follow plan for the sizes they meet."""
        if db.session.get_bind().dialect.name != "postgresql":
            return
        for name in self.next_ids:
            db.session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM \"{name}\"))")  # noqa: S608 (our table names)
            )
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
