"""Database foundations: the declarative base, constraint naming, UTC time and shared mixins.

Every table in the project derives from :class:`Base` (through ``db.Model``), so constraint names are
predictable (Alembic can drop and alter them on SQLite and PostgreSQL alike) and every timestamp is stored
as timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from typing import Any

from sqlalchemy import DateTime, Enum, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware in UTC (the only kind of datetime we store)."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A DateTime column that only accepts aware datetimes and always returns them in UTC.

    SQLite has no time zone support, so values are normalised to naive UTC on the way in and marked UTC on
    the way out; PostgreSQL stores ``timestamptz``. A naive datetime is a programming error: we refuse it
    rather than guess its zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def str_enum(enum_class: type[enum.Enum], length: int = 20) -> Enum:
    """A Python enum stored as its *values* in a VARCHAR with a CHECK (portable, readable in SQL and CSV)."""
    return Enum(
        enum_class,
        native_enum=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention and type map."""

    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={dt.datetime: UTCDateTime()},
    )


class TimestampMixin:
    """``created_at`` / ``updated_at`` in UTC, set by the database session, not by callers."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Make SQLite behave transactionally like PostgreSQL.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINTs (which the tests and nested units
    of work rely on); we switch it off and emit BEGIN ourselves (see ``_sqlite_begin``). Foreign keys are off
    by default in SQLite; we want them enforced.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        # WAL lets readers (the web app, a progress poll) run while a worker writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection: Any) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


def ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it sat idle for ``idle_seconds`` or longer.

    ``pool_pre_ping`` pings on *every* checkout: one extra database round trip per request (~0.4 ms here),
    which is a sixth of the budget of a real-time authorization. A connection that was used a moment ago is
    alive; the ones that may have died (database restart, a firewall dropping idle TCP) are the idle ones.
    A connection that dies between two busy requests fails that one request; SQLAlchemy then invalidates the
    pool, so the next requests reconnect.
    """

    @event.listens_for(engine, "checkin")
    def _remember_checkin(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
        checked_in_at = connection_record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"pooled connection failed its ping after being idle: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping after being idle")
