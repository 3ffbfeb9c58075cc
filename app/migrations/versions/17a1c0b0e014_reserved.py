"""index roaming_cdrs.original_cdr_id (the credit CDR's link to the CDR it credits)

Revision ID: 17a1c0b0e014
Revises: 16b2b0abe013
Create Date: 2026-12-07 06:00:00.000000

Deleting a CDR (or checking one before a delete) makes the database look for CDRs whose original_cdr_id names it
(the foreign key's ON DELETE RESTRICT): without an index that is a scan of every CDR, per CDR deleted, which at
millions of rows turns a delete of a few thousand CDRs into hours. Partial: only credit CDRs carry the link, so
the index stays small and an ordinary CDR's insert does not touch it; a lookup "original_cdr_id = x" uses it on
PostgreSQL and SQLite alike (the condition implies IS NOT NULL).
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '17a1c0b0e014'
down_revision = '16b2b0abe013'
branch_labels = None
depends_on = None

LINKED = sa.text("original_cdr_id IS NOT NULL")


def upgrade():
    with op.batch_alter_table('roaming_cdrs', schema=None) as batch_op:
        batch_op.create_index('ix_roaming_cdrs_original_cdr_id', ['original_cdr_id'], unique=False,
                              postgresql_where=LINKED, sqlite_where=LINKED)


def downgrade():
    with op.batch_alter_table('roaming_cdrs', schema=None) as batch_op:
        batch_op.drop_index('ix_roaming_cdrs_original_cdr_id', postgresql_where=LINKED, sqlite_where=LINKED)
