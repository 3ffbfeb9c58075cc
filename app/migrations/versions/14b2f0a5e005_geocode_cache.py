"""finder: geocoding answers cached

Revision ID: 14b2f0a5e005
Revises: 14a1f0a4e004
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '14b2f0a5e005'
down_revision = '14a1f0a4e004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('finder_geocode_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('country_hint', sa.String(length=2), nullable=False),
    sa.Column('query_key', sa.String(length=400), nullable=False),
    sa.Column('found', sa.Boolean(), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('label', sa.String(length=255), nullable=True),
    sa.Column('kind', sa.Enum('city', 'postcode', 'address', name='placekind', native_enum=False, length=10),
              nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('fetched_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('NOT found OR (latitude IS NOT NULL AND longitude IS NOT NULL AND label IS NOT NULL '
                       'AND kind IS NOT NULL)', name=op.f('ck_finder_geocode_answers_found_has_place')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finder_geocode_answers')),
    sa.UniqueConstraint('provider', 'language', 'country_hint', 'query_key', name='uq_finder_geocode_answers_key')
    )


def downgrade():
    op.drop_table('finder_geocode_answers')
