"""roaming: reserved for the location import's speed work

Revision ID: 14d4f0a7e011
Revises: 14c3f0a6e010
Create Date: 2026-12-07 02:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '14d4f0a7e011'
down_revision = '14c3f0a6e010'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
