"""The scratch PostgreSQL database a benchmark runs on: created when missing, so every script works on a fresh
machine on its own (``make bench`` or one script by hand)."""

from __future__ import annotations

import psycopg


def ensure_database(url: str) -> None:
    """Create the database named at the end of ``url`` (SQLAlchemy or libpq form) unless it exists. Refuses the
    ``test`` database, which the test suite empties."""
    name = url.rsplit("/", 1)[1]
    if name == "test":
        raise SystemExit("refusing to benchmark on the test database")
    admin = url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
