"""app API: the notification email of an account (issue 15)

Revision ID: 15b2c0aae012
Revises: 15a1c0a9e009
Create Date: 2026-12-07 02:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '15b2c0aae012'
down_revision = '15a1c0a9e009'
branch_labels = None
depends_on = None


def upgrade():
    # The account's notification address (confirmed) and the one awaiting its confirmation link.
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("notification_email", sa.String(length=254), nullable=True))
        batch.add_column(sa.Column("notification_email_pending", sa.String(length=254), nullable=True))


def downgrade():
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("notification_email_pending")
        batch.drop_column("notification_email")
