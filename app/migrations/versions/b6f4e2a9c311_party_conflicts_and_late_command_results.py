"""party conflicts (a party belongs to one connection) and late command results

Revision ID: b6f4e2a9c311
Revises: e7a91c3f5d20
Create Date: 2026-12-06 21:45:00.000000

"""
from alembic import op
import sqlalchemy as sa
import app.db


# revision identifiers, used by Alembic.
revision = 'b6f4e2a9c311'
down_revision = 'e7a91c3f5d20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('roaming_party_conflicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('country_code', sa.String(length=2), nullable=False),
    sa.Column('party_id', sa.String(length=3), nullable=False),
    sa.Column('claimant_partner_id', sa.Integer(), nullable=False),
    sa.Column('holder_partner_id', sa.Integer(), nullable=True),
    sa.Column('holder', sa.String(length=160), nullable=False),
    sa.Column('via', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['claimant_partner_id'], ['roaming_partners.id'],
                            name=op.f('fk_roaming_party_conflicts_claimant_partner_id_roaming_partners'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['holder_partner_id'], ['roaming_partners.id'],
                            name=op.f('fk_roaming_party_conflicts_holder_partner_id_roaming_partners'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roaming_party_conflicts')),
    sa.UniqueConstraint('country_code', 'party_id', 'claimant_partner_id', 'via', 'outcome',
                        name='uq_roaming_party_conflicts_claim')
    )
    with op.batch_alter_table('roaming_party_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roaming_party_conflicts_last_seen_at'), ['last_seen_at'], unique=False)

    with op.batch_alter_table('roaming_commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timed_out_at', app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('late_result', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('late_result_message', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('late_result_at', app.db.UTCDateTime(timezone=True), nullable=True))
    # Commands that timed out on our side before this revision: expire_commands wrote this message.
    op.execute("UPDATE roaming_commands SET timed_out_at = result_at WHERE result = 'TIMEOUT' "
               "AND result_message = 'no CommandResult from the CPO within its timeout'")


def downgrade():
    with op.batch_alter_table('roaming_commands', schema=None) as batch_op:
        batch_op.drop_column('late_result_at')
        batch_op.drop_column('late_result_message')
        batch_op.drop_column('late_result')
        batch_op.drop_column('timed_out_at')

    with op.batch_alter_table('roaming_party_conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roaming_party_conflicts_last_seen_at'))

    op.drop_table('roaming_party_conflicts')
