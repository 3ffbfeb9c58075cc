"""partner lifecycle: suspended and removed partners

Revision ID: 13b2d0a2e002
Revises: 13a1c0a1e001
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13b2d0a2e002'
down_revision = '13a1c0a1e001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('roaming_partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_changed_at', app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('status_changed_by', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('status_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('tokens_restated_at', app.db.UTCDateTime(timezone=True), nullable=True))
    # Until this revision "suspended" was written only when the credentials ended (they DELETEd them, or we
    # unregistered): those partners are "unregistered" now, and "suspended" means we paused a live connection.
    op.execute("UPDATE roaming_partners SET status = 'unregistered', "
               "status_reason = 'credentials ended before partner lifecycle records (migration 13b2d0a2e002)' "
               "WHERE status = 'suspended'")


def downgrade():
    # The earlier code knew one "no traffic" status: every paused, unregistered or removed partner becomes it.
    # Its token stops working there (that code refused every call of a suspended partner).
    op.execute("UPDATE roaming_partners SET status = 'suspended' "
               "WHERE status IN ('unregistered', 'removed')")
    with op.batch_alter_table('roaming_partners', schema=None) as batch_op:
        batch_op.drop_column('tokens_restated_at')
        batch_op.drop_column('status_reason')
        batch_op.drop_column('status_changed_by')
        batch_op.drop_column('status_changed_at')
