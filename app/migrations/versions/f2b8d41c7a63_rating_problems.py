"""rating problems: CDRs that could not be rated, with why

Revision ID: f2b8d41c7a63
Revises: e7a91c3f5d20
Create Date: 2026-11-24 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = 'f2b8d41c7a63'
down_revision = 'e7a91c3f5d20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rating_problems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cdr_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_failed_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_failed_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cdr_id'], ['roaming_cdrs.id'], name=op.f('fk_rating_problems_cdr_id_roaming_cdrs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rating_problems')),
    sa.UniqueConstraint('cdr_id', name=op.f('uq_rating_problems_cdr_id'))
    )


def downgrade():
    op.drop_table('rating_problems')
