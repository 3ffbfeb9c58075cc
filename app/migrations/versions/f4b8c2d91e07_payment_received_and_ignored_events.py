"""payments: amount and currency received, review flag; Stripe events: reason when ignored

Revision ID: f4b8c2d91e07
Revises: e7a91c3f5d20
Create Date: 2026-11-25 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f4b8c2d91e07'
down_revision = 'e7a91c3f5d20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('billing_payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_received_minor', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('received_currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('review', sa.Enum('underpaid', 'overpaid', 'currency_mismatch',
                                                        name='paymentreview', native_enum=False, length=20),
                                      nullable=True))
        batch_op.create_index('ix_billing_payments_review', ['review'], unique=False,
                              postgresql_where=sa.text('review IS NOT NULL'),
                              sqlite_where=sa.text('review IS NOT NULL'))
    with op.batch_alter_table('billing_stripe_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ignored_reason', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('billing_stripe_events', schema=None) as batch_op:
        batch_op.drop_column('ignored_reason')
    with op.batch_alter_table('billing_payments', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_payments_review', postgresql_where=sa.text('review IS NOT NULL'),
                            sqlite_where=sa.text('review IS NOT NULL'))
        batch_op.drop_column('review')
        batch_op.drop_column('received_currency')
        batch_op.drop_column('amount_received_minor')
