"""index for linking credit CDRs to their original

Revision ID: e7a91c3f5d20
Revises: c41e7d2b9a10
Create Date: 2026-11-23 23:25:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7a91c3f5d20'
down_revision = 'c41e7d2b9a10'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('roaming_cdrs', schema=None) as batch_op:
        batch_op.create_index('ix_roaming_cdrs_credit_reference',
                              ['partner_id', 'country_code', 'party_id', 'credit_reference_id'], unique=False,
                              postgresql_where=sa.text('credit'), sqlite_where=sa.text('credit'))


def downgrade():
    with op.batch_alter_table('roaming_cdrs', schema=None) as batch_op:
        batch_op.drop_index('ix_roaming_cdrs_credit_reference',
                            postgresql_where=sa.text('credit'), sqlite_where=sa.text('credit'))
