"""reserved for issue 17's collection-outage work; dropped if unused

Revision ID: 17c3c0b2e016
Revises: 17b2c0b1e015
Create Date: 2026-12-07 06:30:00.000000

Reserved: empty until its work lands.
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '17c3c0b2e016'
down_revision = '17b2c0b1e015'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
