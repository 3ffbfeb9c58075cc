"""invoices: the structured payment reference (Belgian OGM/VCS or ISO 11649 RF) kept for matching transfers

Revision ID: 16a1b0a8e008
Revises: 14b2f0a5e005
Create Date: 2026-12-07 00:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '16a1b0a8e008'
down_revision = '14b2f0a5e005'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
