"""commands: the CPO's answer kept apart from our own failure to reach it

Revision ID: 13e5d0a7e007
Revises: 13d4d0a6e006
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13e5d0a7e007'
down_revision = '13d4d0a6e006'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
