"""reserved for issue 17's partner-health work; dropped if unused

Revision ID: 17b2c0b1e015
Revises: 17a1c0b0e014
Create Date: 2026-12-07 06:00:00.000000

Reserved: empty until its work lands.
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '17b2c0b1e015'
down_revision = '17a1c0b0e014'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
