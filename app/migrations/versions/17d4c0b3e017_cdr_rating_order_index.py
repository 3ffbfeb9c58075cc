"""index roaming_cdrs in rating order (credit, start_date_time, id) for CDRs of a known account

Revision ID: 17d4c0b3e017
Revises: 17c3c0b2e016
Create Date: 2026-12-07 07:00:00.000000

Rating's pass over CDRs without a charge (app.rating.pending) walks the CDRs in the order they must be rated,
a window at a time, when many are pending (after a broker outage, a generated national data set): without an
index in that order each window sorted the whole table. Partial: only CDRs with an account are rated.
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '17d4c0b3e017'
down_revision = '17c3c0b2e016'
branch_labels = None
depends_on = None

RATED = sa.text("account_id IS NOT NULL")


def upgrade():
    with op.batch_alter_table('roaming_cdrs', schema=None) as batch_op:
        batch_op.create_index('ix_roaming_cdrs_rating_order', ['credit', 'start_date_time', 'id'], unique=False,
                              postgresql_where=RATED, sqlite_where=RATED)


def downgrade():
    with op.batch_alter_table('roaming_cdrs', schema=None) as batch_op:
        batch_op.drop_index('ix_roaming_cdrs_rating_order', postgresql_where=RATED, sqlite_where=RATED)
