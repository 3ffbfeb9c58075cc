"""What every connection of the app's engine is told at connect time (``app.db``)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from app.extensions import db


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="JIT is PostgreSQL's; SQLite has nothing to turn off (make test runs this on PostgreSQL)",
)
def test_postgresql_jit_is_off_for_every_connection_of_the_app(app):
    """The planner's JIT spent ~46 ms compiling one finder walk that runs in a few (app.db.no_jit)."""
    with app.app_context():
        engine = db.engine
        engine.dispose()  # new connections: the setting is made when one connects
        with engine.connect() as first, engine.connect() as second:
            assert first.execute(text("SHOW jit")).scalar() == "off"
            assert second.execute(text("SHOW jit")).scalar() == "off"
