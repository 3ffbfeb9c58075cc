"""finder: reserved for the finder's speed work

Revision ID: 14c3f0a6e010
Revises: 15a1c0a9e009
Create Date: 2026-12-07 02:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '14c3f0a6e010'
down_revision = '15a1c0a9e009'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
