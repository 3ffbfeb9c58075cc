"""partner health: when each token delivery was last tried (issue 17)

Revision ID: 17b2c0b1e015
Revises: 17a1c0b0e014
Create Date: 2026-12-07 06:00:00.000000

A partner that fails shows when it last failed, with its last error, beside when a token last reached it
(app.roaming.network). Nullable, no default: adding it rewrites nothing, and deliveries tried before it
simply have no time.
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '17b2c0b1e015'
down_revision = '17a1c0b0e014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('roaming_token_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_attempt_at', app.db.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('roaming_token_deliveries', schema=None) as batch_op:
        batch_op.drop_column('last_attempt_at')
