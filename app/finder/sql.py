"""What the finder's statements share: a list of ids as one parameter.

An expanding IN (``column IN (:id_1, :id_2, ...)``) is another statement for each number of ids: psycopg can never
prepare it (it prepares a statement it has seen five times) and converts its placeholders again at every search,
and PostgreSQL plans it again. On PostgreSQL the ids go as one array instead (``column = ANY(:ids)``): one text
whatever their number. SQLite keeps the expanding IN (it has no arrays, and runs in-process).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Integer, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute


def ids_condition(
    column: ColumnElement[int] | InstrumentedAttribute[int], dialect: str, name: str = "ids"
) -> ColumnElement[bool]:
    """``column`` among the ids of the parameter ``name`` (a list of ints)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(Integer)))
    return column.in_(bindparam(name, expanding=True))
