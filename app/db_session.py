"""Helpers that work on the current database session (``db.session``).

Apart from :mod:`app.db` on purpose: :mod:`app.extensions` builds ``db`` from ``app.db.Base``, so ``app.db``
cannot use ``db`` without a circle; these helpers sit on top of both.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached

from app.extensions import db

Instance = TypeVar("Instance")


def insert_or_ignore(model: Any) -> postgresql.Insert | sqlite.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the dialect in use (PostgreSQL and SQLite spell it the same;
    SQLAlchemy has one construct per dialect). Add ``.on_conflict_do_nothing(index_elements=[...])``."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"no INSERT ... ON CONFLICT DO NOTHING for {dialect}")


def attach_as_loaded(instance: Instance) -> Instance:
    """Make ``instance`` — built from values known to equal its row (just written with Core, or cached) — a
    persistent object of the current session without a query: the SQLAlchemy recipe for cached objects
    (a detached instance merged with ``load=False``). Attributes not given load lazily when read."""
    make_transient_to_detached(instance)
    return db.session.merge(instance, load=False)
