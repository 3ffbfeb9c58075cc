"""Database foundations: the declarative base, constraint naming, UTC time and shared mixins.

Every table in the project derives from :class:`Base` (through ``db.Model``), so constraint names are
predictable (Alembic can drop and alter them on SQLite and PostgreSQL alike) and every timestamp is stored
as timezone-aware UTC. :func:`configure_sqlite` makes the embedded SQLite file safe for several writers.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from typing import Any

from sqlalchemy import CompoundSelect, DateTime, Enum, MetaData, Select, event
from sqlalchemy.engine import Connection, Engine
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


SQLITE_BEGIN = "BEGIN IMMEDIATE"
_BEGIN_PENDING = "sqlite_begin_pending"  # in Connection.info: a transaction is open but SQLite's BEGIN not yet sent


def configure_sqlite(engine: Engine, busy_timeout_seconds: float) -> None:
    """Make a SQLite engine of ours safe for several writers (web threads, a worker, background writers).

    - **WAL**: readers never wait for a writer, nor a writer for readers; ``synchronous=NORMAL`` is WAL's own
      recommended setting (a commit survives a crash of the application; only a power cut may lose the last ones).
    - **Writers begin IMMEDIATE, at their first write**: SQLite has one write lock. With its default (deferred)
      BEGIN a unit of work that read first (nearly all of ours: find the partner, then store its session) holds a
      read snapshot, and when it then writes after another connection has committed, SQLite refuses at once with
      "database is locked", whatever the busy timeout: the HTTP 500s of issue 17. So no snapshot is held before
      the first write: until then each statement reads the latest committed data on its own (PostgreSQL's READ
      COMMITTED does the same), and the first statement that is not a plain read (a write, a ``SELECT ... FOR
      UPDATE``, a SAVEPOINT, DDL, a pragma) is preceded by ``BEGIN IMMEDIATE``, which waits up to the busy timeout
      for the other writer and then holds the lock to COMMIT: from there the unit of work is alone. A unit of work
      that only reads never takes the lock, so a page, a partner's GET, a job polling or calling a partner between
      its commits never makes a writer wait. (Taking the lock at the transaction's start instead, the SQLAlchemy
      recipe, made every read-only transaction left open, e.g. across a job's HTTP call, stop every writer.)
    - **Our own BEGIN** (pysqlite's ``isolation_level=None``, SQLAlchemy's recipe for pysqlite): pysqlite would
      otherwise begin only before INSERT/UPDATE/DELETE, leaving SAVEPOINTs (``begin_nested``) outside the
      transaction; a rollback now undoes everything since BEGIN, savepoints included.
    - **Foreign keys on** (off by default in SQLite).

    Listeners on this engine only, not on every SQLAlchemy engine of the process: Celery's embedded broker (kombu's
    SQLAlchemy transport) runs its own transactions on its own SQLite file. PostgreSQL engines are left alone.
    """
    if engine.dialect.name != "sqlite":
        return
    busy_timeout_ms = max(0, round(busy_timeout_seconds * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode=WAL")  # stored in the file: a no-op after the first connection
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # asked for no transaction (a read-only fast path): each statement runs on its own
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and dbapi_connection.isolation_level is not None:
            # SQLAlchemy's reset after an AUTOCOMMIT use hands the connection back in pysqlite's legacy mode.
            dbapi_connection.isolation_level = None
        connection.info[_BEGIN_PENDING] = True

    @event.listens_for(engine, "before_cursor_execute")
    def _begin_before_first_write(
        connection: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if connection.info.get(_BEGIN_PENDING) and not _only_reads(statement, context):
            connection.info[_BEGIN_PENDING] = False
            cursor.execute(SQLITE_BEGIN)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _transaction_ended(connection: Connection) -> None:
        connection.info.pop(_BEGIN_PENDING, None)

    @event.listens_for(engine, "checkin")
    def _forget_on_checkin(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info.pop(_BEGIN_PENDING, None)  # a connection returned without COMMIT/ROLLBACK events


def _only_reads(statement: str, context: Any) -> bool:
    """A plain SELECT: compiled from a SELECT construct without FOR UPDATE (SQLite's compiler leaves that clause
    out, so the construct is asked), or SQL text that starts with SELECT. Anything else counts as a write."""
    element = getattr(getattr(context, "compiled", None), "statement", None)
    if isinstance(element, Select | CompoundSelect):
        return getattr(element, "_for_update_arg", None) is None
    return statement.lstrip()[:6].upper() == "SELECT"


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


def no_jit(engine: Engine) -> None:
    """Turn PostgreSQL's JIT compiler off for our connections.

    The planner switches JIT on when a query's estimated cost passes ``jit_above_cost``; for the finder's index
    walk over many locations it then spent ~46 ms compiling a query that runs in a few: our statements are short
    and many, the case JIT makes slower. Set per connection so no server or role setting is needed."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "connect")
    def _jit_off(dbapi_connection: Any, connection_record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()
