"""invoices: the structured payment reference (Belgian OGM/VCS or ISO 11649 RF) kept for matching transfers

Revision ID: 16a1b0a8e008
Revises: 14b2f0a5e005
Create Date: 2026-12-07 00:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '16a1b0a8e008'
down_revision = '14b2f0a5e005'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: invoices issued before carry their number as the reference (frozen in their snapshot), credit
    # notes none. A unique index: one reference, one invoice (NULLs do not collide).
    with op.batch_alter_table('billing_invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_reference', sa.String(length=25), nullable=True))
        batch_op.create_index('ix_billing_invoices_payment_reference', ['payment_reference'], unique=True)


def downgrade():
    with op.batch_alter_table('billing_invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_invoices_payment_reference')
        batch_op.drop_column('payment_reference')
