"""staff token revocations and the audit log of who did what (#20)

Revision ID: 0005
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staff_revocations',
        sa.Column('staff_id', sa.String(length=64), nullable=False),
        sa.Column('revoked_before_ms', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('recorded_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('staff_id'),
    )
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('actor_role', sa.String(length=32), nullable=True),
        sa.Column('on_behalf_of', sa.String(length=64), nullable=True),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target', sa.String(length=200), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_at', 'audit_log', ['at'])
    op.create_index('ix_audit_target', 'audit_log', ['target', 'at'])
    op.create_index('ix_audit_actor', 'audit_log', ['actor', 'at'])


def downgrade() -> None:
    op.drop_index('ix_audit_actor', table_name='audit_log')
    op.drop_index('ix_audit_target', table_name='audit_log')
    op.drop_index('ix_audit_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('staff_revocations')
