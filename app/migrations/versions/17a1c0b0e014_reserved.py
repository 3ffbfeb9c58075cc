"""reserved for the fault and scale work (issue 17): an index on roaming_cdrs.original_cdr_id

Revision ID: 17a1c0b0e014
Revises: 16b2b0abe013
Create Date: 2026-12-07 06:00:00.000000

Reserved: empty until its work lands.
"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '17a1c0b0e014'
down_revision = '16b2b0abe013'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
