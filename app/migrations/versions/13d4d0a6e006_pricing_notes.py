"""rating: notes on how a CDR was priced (clamped charging periods)

Revision ID: 13d4d0a6e006
Revises: 13c3d0a3e003
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13d4d0a6e006'
down_revision = '13c3d0a3e003'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
