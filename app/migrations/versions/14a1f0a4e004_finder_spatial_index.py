"""finder: spatial index on locations

Revision ID: 14a1f0a4e004
Revises: 13e5d0a7e007
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '14a1f0a4e004'
down_revision = '13e5d0a7e007'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
