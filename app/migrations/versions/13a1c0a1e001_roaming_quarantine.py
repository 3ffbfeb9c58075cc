"""roaming quarantine: objects received from partners that we could not store, kept raw with why

Revision ID: 13a1c0a1e001
Revises: b7e4c2a91f30
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13a1c0a1e001'
down_revision = 'b7e4c2a91f30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('roaming_quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('module', sa.String(length=20), nullable=False),
    sa.Column('via', sa.String(length=10), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=True),
    sa.Column('country_code', sa.String(length=2), nullable=True),
    sa.Column('party_id', sa.String(length=3), nullable=True),
    sa.Column('ocpi_id', sa.String(length=39), nullable=True),
    sa.Column('evse_uid', sa.String(length=36), nullable=True),
    sa.Column('connector_id', sa.String(length=36), nullable=True),
    sa.Column('object_key', sa.String(length=128), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('raw_truncated', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('received_count', sa.Integer(), nullable=False),
    sa.Column('first_received_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_received_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reprocessed_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['roaming_partners.id'],
                            name=op.f('fk_roaming_quarantine_partner_id_roaming_partners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roaming_quarantine')),
    sa.UniqueConstraint('partner_id', 'module', 'object_key', 'content_hash', name='uq_roaming_quarantine_object')
    )
    with op.batch_alter_table('roaming_quarantine', schema=None) as batch_op:
        batch_op.create_index('ix_roaming_quarantine_pending', ['partner_id', 'module', 'resolved_at'], unique=False)

    op.create_table('roaming_quarantine_overflow',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('module', sa.String(length=20), nullable=False),
    sa.Column('dropped', sa.Integer(), nullable=False),
    sa.Column('first_dropped_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_dropped_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['roaming_partners.id'],
                            name=op.f('fk_roaming_quarantine_overflow_partner_id_roaming_partners'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roaming_quarantine_overflow')),
    sa.UniqueConstraint('partner_id', 'module', name=op.f('uq_roaming_quarantine_overflow_partner_id_module'))
    )


def downgrade():
    op.drop_table('roaming_quarantine_overflow')
    with op.batch_alter_table('roaming_quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_roaming_quarantine_pending')

    op.drop_table('roaming_quarantine')
