"""roaming quarantine: objects received from partners that we could not store, kept raw with why

Revision ID: 13a1c0a1e001
Revises: b7e4c2a91f30
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13a1c0a1e001'
down_revision = 'b7e4c2a91f30'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
