"""finance: reserved for the finance search

Revision ID: 16b2b0abe013
Revises: 15b2c0aae012
Create Date: 2026-12-07 02:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '16b2b0abe013'
down_revision = '15b2c0aae012'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
