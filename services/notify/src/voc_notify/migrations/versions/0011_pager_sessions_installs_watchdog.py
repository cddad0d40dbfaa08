"""the staff app as a pager (#23): refresh tokens, app installs, delivery watchdog

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'refresh_tokens',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('family_id', sa.String(length=36), nullable=False),
        sa.Column('staff_id', sa.String(length=64), nullable=False),
        sa.Column('install_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('used_at', sa.Float(), nullable=True),
        sa.Column('revoked_at', sa.Float(), nullable=True),
        sa.Column('revoked_reason', sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_index('ix_refresh_tokens_family_id', 'refresh_tokens', ['family_id'])
    op.create_index('ix_refresh_tokens_staff_id', 'refresh_tokens', ['staff_id'])
    op.create_index('ix_refresh_tokens_expires_at', 'refresh_tokens', ['expires_at'])
    op.create_table(
        'app_installs',
        sa.Column('install_id', sa.String(length=64), nullable=False),
        sa.Column('staff_id', sa.String(length=64), nullable=False),
        sa.Column('permission', sa.String(length=16), nullable=False),
        sa.Column('push', sa.String(length=16), nullable=False),
        sa.Column('app_version', sa.String(length=32), nullable=False),
        sa.Column('standalone', sa.Boolean(), nullable=False),
        sa.Column('device_id', sa.String(length=36), nullable=True),
        sa.Column('user_agent', sa.String(length=300), nullable=True),
        sa.Column('reported_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('install_id'),
    )
    op.create_index('ix_app_installs_staff_id', 'app_installs', ['staff_id'])
    op.create_table(
        'fallback_pages',
        sa.Column('alert_id', sa.String(length=36), nullable=False),
        sa.Column('staff_id', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('alert_id', 'staff_id'),
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('install_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('last_shown_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('suspect_since', sa.Float(), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('watched_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('notification_ack_at', sa.Float(), nullable=True))
        batch_op.create_index('ix_deliveries_unshown', ['status', 'shown_at', 'accepted_at'])


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_unshown')
        batch_op.drop_column('notification_ack_at')
        batch_op.drop_column('watched_at')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('suspect_since')
        batch_op.drop_column('last_shown_at')
        batch_op.drop_column('install_id')
    op.drop_table('fallback_pages')
    op.drop_index('ix_app_installs_staff_id', table_name='app_installs')
    op.drop_table('app_installs')
    op.drop_index('ix_refresh_tokens_expires_at', table_name='refresh_tokens')
    op.drop_index('ix_refresh_tokens_staff_id', table_name='refresh_tokens')
    op.drop_index('ix_refresh_tokens_family_id', table_name='refresh_tokens')
    op.drop_table('refresh_tokens')
