"""Multi-row writes (the invoice run, the location importer, ``flask demo generate``): many rows in one round trip,
in the session's transaction.

On PostgreSQL the rows go through ``COPY ... FROM STDIN`` (psycopg), the fastest way in: no SQL text per row, no
parameter parsing, one stream per table. Ids are taken from the table's sequence beforehand, so rows that
refer to each other (an invoice and its lines) are written without a RETURNING round trip. Elsewhere (SQLite in
tests and the embedded default) a Core ``insert()`` with a list of rows (executemany) does the same job.

Rows are plain dicts with the same keys; JSON columns hold plain JSON-able values, enum columns enum members. A
writer of millions of similar rows can hand them over already as COPY text (:func:`insert_lines`): no Python
formatting per value at all.

:func:`deferred_indexes` is for a bulk load into empty tables: their secondary indexes and foreign keys are
dropped for the load and rebuilt (and checked) once at the end, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import JSON, Boolean, DateTime, Enum, Float, Integer, Numeric, Table, insert, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from app.extensions import db


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def refresh_statistics(tables: Sequence[Table]) -> None:
    """Tell PostgreSQL's planner what ``tables`` hold now (``ANALYZE``, in the session's transaction; SQLite plans
    without statistics). For after a bulk write that grew a table many times over: a statement the driver has
    prepared keeps the plan made for the table's earlier size (a sequential scan of an empty table looks free)
    until the statistics change, and autovacuum may be off or a minute away."""
    if not _is_postgresql():
        return
    for name in (table.name for table in tables):
        db.session.execute(text(f'ANALYZE "{name}"'))


def refresh_grown_statistics(tables: Sequence[Table], at_least: int = 1_000) -> list[str]:
    """:func:`refresh_statistics` for those of ``tables`` that have had more rows written since their last
    ``ANALYZE`` than they then held (and at least ``at_least``): called after each batch of a long bulk write, it
    analyses as the table doubles, about log2(rows) times in all. One catalogue query when nothing grew; a table
    another process is analysing is skipped. Returns the names analysed."""
    if not _is_postgresql():
        return []
    grown = list(
        db.session.scalars(
            text(
                "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
                "WHERE s.relname = ANY(:names) AND s.n_mod_since_analyze > greatest(c.reltuples, 0) + :at_least"
            ),
            {"names": [table.name for table in tables], "at_least": at_least},
        )
    )
    for name in grown:
        db.session.execute(text(f'ANALYZE (SKIP_LOCKED) "{name}"'))
    return grown


def insert_returning_ids(table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` (integer ``id`` primary key) and return their ids, in row order."""
    if not rows:
        return []
    if _is_postgresql():
        ids = list(
            db.session.execute(
                text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
                {"table": table.name, "count": len(rows)},
            ).scalars()
        )
        copy_rows(table, [{"id": row_id, **row} for row_id, row in zip(ids, rows, strict=True)])
        return ids
    return list(
        db.session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)).scalars()
    )


def insert_rows(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table``; no ids back."""
    if not rows:
        return
    if _is_postgresql():
        copy_rows(table, rows)
    else:
        db.session.execute(insert(table), list(rows))


def _python_default(default: ScalarElementColumnDefault | CallableColumnDefault) -> Any:
    """The value of a column's Python-side default (``default=value`` or ``default=callable``)."""
    if isinstance(default, CallableColumnDefault):
        # Wrapped by SQLAlchemy to take an execution context, which ours (utcnow, dict, list) ignore.
        return default.arg(cast(Any, None))
    return default.arg


def copy_rows(table: Table, rows: Sequence[dict[str, Any]], driver_connection: Any = None) -> None:
    """``COPY table (columns) FROM STDIN`` on the session's own connection (so in its transaction), or on
    ``driver_connection`` (the session's psycopg connection, taken by a thread that writes while the session's
    owner waits: ``demo.generate_base.Writer``). Python-side column defaults (``default=``) are applied to the
    columns the rows leave out, as an ORM insert would."""
    names = list(rows[0])
    # Scalar and Python-callable defaults only (SQL expressions and sequences are the server's to apply). Callable
    # defaults are wrapped by SQLAlchemy to take an execution context; ours (utcnow, dict, list) ignore it.
    defaults = {
        column.name: _python_default(column.default)
        for column in table.columns
        if column.name not in names
        and not column.primary_key
        and isinstance(column.default, ScalarElementColumnDefault | CallableColumnDefault)
    }
    columns = names + list(defaults)
    special = [
        (index, convert)
        for index, column in enumerate(columns)
        if (convert := _converter(table.c[column].type)) is not None
    ]
    values_of = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    extra = tuple(defaults.values())
    if driver_connection is None:
        driver_connection = db.session.connection().connection.driver_connection
    quoted = ", ".join(f'"{name}"' for name in columns)
    statement = f'COPY "{table.name}" ({quoted}) FROM STDIN'
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = [*values_of(row), *extra]
            for index, convert in special:
                if values[index] is not None:
                    values[index] = convert(values[index])
            copy.write_row(values)


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _converter(column_type: Any) -> Any:
    """How a Python value becomes COPY input where psycopg's own adaptation is not what the column stores."""
    if isinstance(column_type, JSON):
        return _compact_json
    if isinstance(column_type, Enum):
        # Stored as the member's value; a plain string is taken as it is.
        values = {member: member.value for member in column_type.enum_class or ()}
        return lambda member: values.get(member, member)
    impl = getattr(column_type, "impl", None)  # a TypeDecorator (UTC datetimes): psycopg adapts aware datetimes
    return _converter(impl) if impl is not None and not isinstance(impl, type) else None


# ------------------------------------------------------------------------------------------- rows as text

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
NULL = "\\N"  # a NULL field in COPY text


def copy_escape(value: str) -> str:
    """``value`` as a field of COPY text: backslash, tab, newline and carriage return escaped."""
    return value.translate(_COPY_ESCAPES)


def insert_lines(table: Table, columns: Sequence[str], lines: Sequence[str], driver_connection: Any = None) -> None:
    """Insert rows written as COPY text by the caller: one line per row, each ending in a newline, its fields in
    ``columns``' order separated by tabs, :data:`NULL` for NULL, strings through :func:`copy_escape`, numbers,
    booleans (``t``/``f``), ISO 8601 timestamps with their offset or ``Z``, JSON as its text. On PostgreSQL they
    go to ``COPY`` as they are (on the session's connection, or ``driver_connection`` as :func:`copy_rows`);
    elsewhere each line is read back into values by the columns' types and inserted (executemany), so both
    databases store the same rows from the same text. Every column with a Python-side default must be among
    ``columns`` (nothing here fills it in)."""
    if not lines:
        return
    missing = [
        column.name
        for column in table.columns
        if column.name not in columns and isinstance(column.default, ScalarElementColumnDefault | CallableColumnDefault)
    ]
    if missing:
        raise ValueError(f"insert_lines into {table.name} needs the columns with a default: {', '.join(missing)}")
    if driver_connection is not None or _is_postgresql():
        if driver_connection is None:
            driver_connection = db.session.connection().connection.driver_connection
        quoted = ", ".join(f'"{name}"' for name in columns)
        with driver_connection.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
            copy.write("".join(lines))
        return
    readers = [_reader(table.c[name].type) for name in columns]
    rows = []
    for line in lines:
        fields = line.rstrip("\n").split("\t")
        rows.append(
            {
                name: None if field == NULL else read(_copy_unescape(field))
                for name, read, field in zip(columns, readers, fields, strict=True)
            }
        )
    db.session.execute(insert(table), rows)


def _copy_unescape(field: str) -> str:
    if "\\" not in field:
        return field
    out, index = [], 0
    while index < len(field):
        char = field[index]
        if char == "\\" and index + 1 < len(field):
            out.append(_COPY_UNESCAPES.get(field[index + 1], field[index + 1]))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _reader(column_type: Any) -> Any:
    """How a field of COPY text becomes the value the column's type binds (for a database without COPY)."""
    impl = getattr(column_type, "impl", None)
    if impl is not None and not isinstance(impl, type):  # a TypeDecorator: read as its storage type
        return _reader(impl)
    if isinstance(column_type, JSON):
        return json.loads
    if isinstance(column_type, Boolean):
        return lambda field: field in ("t", "true")
    if isinstance(column_type, DateTime):
        return dt.datetime.fromisoformat
    if isinstance(column_type, Numeric) and not isinstance(column_type, Float):
        return Decimal
    if isinstance(column_type, Integer):
        return int
    return str


# ------------------------------------------------------------------------------------------- bulk loads


class _Deferred:
    """What :func:`deferred_indexes` dropped: index definitions and foreign keys, per table, to put back."""

    def __init__(self, tables: list[str]) -> None:
        self.tables = tables
        self.indexes: list[str] = []  # CREATE INDEX statements (pg_get_indexdef)
        self.foreign_keys: list[tuple[str, str, str]] = []  # table, constraint name, definition


@contextmanager
def deferred_indexes(tables: Sequence[Table]) -> Iterator[bool]:
    """A bulk load into ``tables`` with their secondary indexes and foreign keys built once at the end instead of
    maintained row by row (PostgreSQL's own advice for populating a database: one sort per index instead of a
    random insert per row and index, one join per key instead of a lookup per row and key). Yields whether they
    were deferred; the caller loads either way.

    Only when every table is empty, on PostgreSQL, and the tables and those their keys refer to can be locked at
    once (``NOWAIT``): a table with rows keeps its indexes (rebuilding them would cost more than it saves, and
    readers would lose them for the load). Everything happens in the session's transaction: the indexes and keys
    come back as they were (``pg_get_indexdef``, ``pg_get_constraintdef``), every foreign key is checked against
    every loaded row when it is added back, and a load that fails rolls back with the drops. The tables (and the
    ones their keys refer to) stay locked until the caller commits: this is for a database being filled, not one
    being served. Primary keys and unique constraints are kept (duplicates still fail at once)."""
    deferred = _drop_for_load([table.name for table in tables]) if _is_postgresql() else None
    yield deferred is not None
    if deferred is not None:
        _rebuild(deferred)


def _drop_for_load(tables: list[str]) -> _Deferred | None:
    session = db.session
    savepoint = session.begin_nested()
    deferred = _Deferred(tables)
    for name in tables:
        for key, definition in session.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:table AS regclass) AND contype = 'f' ORDER BY conname"
            ),
            {"table": name},
        ):
            deferred.foreign_keys.append((name, key, definition))
    referenced = session.scalars(
        text(
            "SELECT DISTINCT CAST(confrelid AS regclass)::text FROM pg_constraint "
            "WHERE conrelid = ANY(CAST(:tables AS regclass[])) AND contype = 'f'"
        ),
        {"tables": tables},
    ).all()
    locked = ", ".join(dict.fromkeys([f'"{name}"' for name in tables] + list(referenced)))
    try:
        session.execute(text(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE NOWAIT"))
    except OperationalError:  # someone is using them: load with the indexes in place
        savepoint.rollback()
        return None
    if any(session.scalar(text(f'SELECT EXISTS (SELECT 1 FROM "{name}")')) for name in tables):  # noqa: S608 (our tables)
        savepoint.rollback()  # releases the locks taken in it
        return None
    for name in tables:
        for index, definition in session.execute(
            text(
                # Not the primary key, not an index behind a constraint (unique, or one a foreign key refers to).
                "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = CAST(:table AS regclass) AND NOT x.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) ORDER BY i.relname"
            ),
            {"table": name},
        ).all():
            deferred.indexes.append(definition)
            session.execute(text(f'DROP INDEX "{index}"'))
    for name, key, _definition in deferred.foreign_keys:
        session.execute(text(f'ALTER TABLE "{name}" DROP CONSTRAINT "{key}"'))
    savepoint.commit()
    return deferred


def _rebuild(deferred: _Deferred) -> None:
    connection = db.session.connection()
    # Sorting a million keys in memory instead of in temporary files, for this transaction only.
    memory = connection.exec_driver_sql("SELECT current_setting('maintenance_work_mem')").scalar_one()
    connection.exec_driver_sql(
        "SELECT set_config('maintenance_work_mem', '256MB', true) "
        "WHERE (SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem') < 262144"
    )
    for definition in deferred.indexes:  # the catalogue's own text: run as it is, no parameters
        connection.exec_driver_sql(definition)
    for name in deferred.tables:  # so that the checks of the foreign keys plan for the rows they meet
        connection.exec_driver_sql(f'ANALYZE "{name}"')
    for name, key, definition in deferred.foreign_keys:
        connection.exec_driver_sql(f'ALTER TABLE "{name}" ADD CONSTRAINT "{key}" {definition}')
    connection.execute(text("SELECT set_config('maintenance_work_mem', :memory, true)"), {"memory": memory})
