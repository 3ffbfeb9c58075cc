"""partner lifecycle: suspended and removed partners

Revision ID: 13b2d0a2e002
Revises: 13a1c0a1e001
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13b2d0a2e002'
down_revision = '13a1c0a1e001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
