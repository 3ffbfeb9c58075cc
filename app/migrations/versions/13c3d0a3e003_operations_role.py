"""operations role and the roaming network view

Revision ID: 13c3d0a3e003
Revises: 13b2d0a2e002
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13c3d0a3e003'
down_revision = '13b2d0a2e002'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
