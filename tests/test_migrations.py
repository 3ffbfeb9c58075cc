"""Alembic has one head and the migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.extensions import db
from app.finder.models import include_in_schema_comparison


def test_single_head(app):
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config(app.extensions["migrate"].directory)
        heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, heads


def test_migrations_match_models(app, db_session):
    # The session schema was built by running the migrations (conftest); compare it to the models.
    connection = db.session.connection()
    # The spatial index (SQLite R*Tree tables, PostgreSQL earthdistance index) cannot be a model: skipped here.
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_in_schema_comparison}
    )
    differences = compare_metadata(context, db.metadata)
    assert differences == []
