"""session price estimate and SEPA mandate reference

Revision ID: c41e7d2b9a10
Revises: 95114f98e61e
Create Date: 2026-11-23 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c41e7d2b9a10'
down_revision = '95114f98e61e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('rating_session_charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('estimate_incl_vat', sa.Numeric(precision=14, scale=4), nullable=True))

    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mandate_reference', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_column('mandate_reference')

    with op.batch_alter_table('rating_session_charges', schema=None) as batch_op:
        batch_op.drop_column('estimate_incl_vat')
