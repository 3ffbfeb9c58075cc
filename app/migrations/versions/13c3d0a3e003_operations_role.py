"""operations role and the roaming network view

The ``operations`` role needs no schema change: ``users.role`` is a VARCHAR(20) without a CHECK on its values.

The network overview (``app.roaming.network``) finds, per partner, its newest session, CDR, tariff version, token
delivery and authorization answer, and counts its authorization answers of the last 24 hours. Without an index
that starts with ``partner_id`` each of those reads the whole table (millions of rows for the log, sessions and
CDRs); with one it is an index probe per partner, or a range of the window's rows.

Revision ID: 13c3d0a3e003
Revises: 13b2d0a2e002
Create Date: 2026-12-06 23:40:00.000000

"""

from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13c3d0a3e003'
down_revision = '13b2d0a2e002'
branch_labels = None
depends_on = None

# (table, index, columns)
INDEXES = (
    ('roaming_authorizations', 'ix_roaming_authorizations_partner_created', ['partner_id', 'created_at']),
    ('roaming_cdrs', 'ix_roaming_cdrs_partner_received', ['partner_id', 'received_at']),
    ('roaming_sessions', 'ix_roaming_sessions_partner_updated', ['partner_id', 'last_updated']),
    ('roaming_tariff_versions', 'ix_roaming_tariff_versions_partner_received', ['partner_id', 'received_at']),
    ('roaming_token_deliveries', 'ix_roaming_token_deliveries_partner_delivered', ['partner_id', 'delivered_at']),
)


def upgrade():
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    for table, name, _columns in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
