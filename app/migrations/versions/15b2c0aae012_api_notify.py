"""app API: reserved for the notification email

Revision ID: 15b2c0aae012
Revises: 14d4f0a7e011
Create Date: 2026-12-07 02:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '15b2c0aae012'
down_revision = '14d4f0a7e011'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
