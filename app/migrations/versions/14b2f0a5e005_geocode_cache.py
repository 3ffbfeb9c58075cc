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
    pass


def downgrade():
    pass
