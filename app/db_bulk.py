"""Multi-row writes for the invoice run: many rows in one round trip, in the session's transaction.

On PostgreSQL the rows go through ``COPY ... FROM STDIN`` (psycopg), the fastest way in: no SQL text per row, no
parameter parsing, one stream per table. Ids are taken from the table's sequence beforehand, so rows that
refer to each other (an invoice and its lines) are written without a RETURNING round trip. Elsewhere (SQLite in
tests and the embedded default) a Core ``insert()`` with a list of rows (executemany) does the same job.

Rows are plain dicts with the same keys; JSON columns hold plain JSON-able values, enum columns enum members.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import JSON, Enum, Table, insert, text
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from app.extensions import db


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


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


def copy_rows(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` on the session's own connection (so in its transaction). Python-side
    column defaults (``default=``) are applied to the columns the rows leave out, as an ORM insert would."""
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
    driver_connection = db.session.connection().connection.driver_connection
    quoted = ", ".join(f'"{name}"' for name in columns)
    statement = f'COPY "{table.name}" ({quoted}) FROM STDIN'
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
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
