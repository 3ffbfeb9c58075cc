"""billing_collection_outages: collection attempts that met a Stripe outage, resumed by themselves

Revision ID: 17c3c0b2e016
Revises: 17b2c0b1e015
Create Date: 2026-12-07 06:30:00.000000

One row per (invoice, attempt) whose try met a Stripe outage (unreachable, no answer in time, the retry refused
for other parameters): when it began, the last try, how many, why (the last failure, in one line: what finance
sees on the run page), when the resume job (``billing.resume_collection``) tries again, and when Stripe's answer
was recorded. While a row is unresolved every collection of the invoice resumes that attempt and first looks for
its PaymentIntent through the metadata, so a retry never charges twice, also after Stripe forgot the key (24 h).
A new table, empty at upgrade: nothing to backfill (outages before it were only logged).
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '17c3c0b2e016'
down_revision = '17b2c0b1e015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('billing_collection_outages',
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('since', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_failed_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('next_try_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['billing_invoices.id'], name=op.f('fk_billing_collection_outages_invoice_id_billing_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('invoice_id', 'attempt', name=op.f('pk_billing_collection_outages'))
    )
    with op.batch_alter_table('billing_collection_outages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_collection_outages_next_try_at'), ['next_try_at'], unique=False)


def downgrade():
    with op.batch_alter_table('billing_collection_outages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_collection_outages_next_try_at'))

    op.drop_table('billing_collection_outages')
