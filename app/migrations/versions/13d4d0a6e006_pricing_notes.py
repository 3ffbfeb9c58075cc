"""rating: notes on how a CDR was priced (clamped charging periods)

Revision ID: 13d4d0a6e006
Revises: 13c3d0a3e003
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13d4d0a6e006'
down_revision = '13c3d0a3e003'
branch_labels = None
depends_on = None


def upgrade():
    # Why a charge's CPO price was computed as it was: the charging periods that did not fit the session
    # (hour-aligned periods of Dutch CPOs) and where they were counted from. NULL: nothing to say.
    with op.batch_alter_table('rating_session_charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pricing_notes', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('rating_session_charges', schema=None) as batch_op:
        batch_op.drop_column('pricing_notes')
