"""real-time check-ins with their idempotency keys (#18)

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'checkins',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('caller', sa.String(length=64), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=True),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('customer_id', sa.String(length=36), nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('visited_at', sa.Float(), nullable=False),
        sa.Column('heads_up', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_checkins_customer_id', 'checkins', ['customer_id'], unique=False)
    op.create_index('ux_checkins_idempotency', 'checkins', ['caller', 'idempotency_key'], unique=True)


def downgrade() -> None:
    op.drop_index('ux_checkins_idempotency', table_name='checkins')
    op.drop_index('ix_checkins_customer_id', table_name='checkins')
    op.drop_table('checkins')
