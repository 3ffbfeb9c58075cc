"""finance: search invoices by a part of the customer's name

Revision ID: 16b2b0abe013
Revises: 15b2c0aae012
Create Date: 2026-12-07 02:40:00.000000

On PostgreSQL a trigram index (pg_trgm) on lower(full_name) serves the search "lower(full_name) LIKE '%peet%'",
which a btree cannot. SQLite has neither the extension nor the operator class: there the search scans, which
its small databases afford, and this migration does nothing.
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '16b2b0abe013'
down_revision = '15b2c0aae012'
branch_labels = None
depends_on = None

INDEX = "ix_accounts_full_name_trgm"


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON accounts USING gin (lower(full_name) gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # The extension stays: other objects may use it by now, and it costs nothing unused.
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
