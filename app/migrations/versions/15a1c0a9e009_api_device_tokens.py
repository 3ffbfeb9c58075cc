"""app API: device tokens (access and refresh, hashed, per device, revocable)

Revision ID: 15a1c0a9e009
Revises: 16a1b0a8e008
Create Date: 2026-12-07 00:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '15a1c0a9e009'
down_revision = '16a1b0a8e008'
branch_labels = None
depends_on = None


REVOKED_REASONS = ('signed_out', 'device_signed_out', 'everywhere', 'password_changed', 'refresh_reused',
                   'too_many_devices')


def upgrade():
    # One row per signed-in phone of the driver's app: SHA-256 digests of its current access and refresh tokens
    # (never the tokens), the refresh token's family (theft detection: an old token of a family revokes it), and
    # the APP_USER token issued for that phone.
    op.create_table('api_devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('access_token_hash', sa.String(length=64), nullable=False),
    sa.Column('access_expires_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('refresh_family', sa.String(length=22), nullable=False),
    sa.Column('refresh_token_hash', sa.String(length=64), nullable=False),
    sa.Column('refresh_expires_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.Enum(*REVOKED_REASONS, name='revokedreason', native_enum=False, length=20),
              nullable=True),
    sa.Column('app_token_card_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['app_token_card_id'], ['cards.id'], name=op.f('fk_api_devices_app_token_card_id_cards'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_devices_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_devices')),
    sa.UniqueConstraint('access_token_hash', name=op.f('uq_api_devices_access_token_hash')),
    sa.UniqueConstraint('refresh_family', name=op.f('uq_api_devices_refresh_family'))
    )
    with op.batch_alter_table('api_devices', schema=None) as batch_op:
        batch_op.create_index('ix_api_devices_user_revoked', ['user_id', 'revoked_at'], unique=False)


def downgrade():
    with op.batch_alter_table('api_devices', schema=None) as batch_op:
        batch_op.drop_index('ix_api_devices_user_revoked')
    op.drop_table('api_devices')
