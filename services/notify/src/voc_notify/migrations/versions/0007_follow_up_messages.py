"""follow-up messages to customers, one per case (#19)

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'follow_up_messages',
        sa.Column('feedback_id', sa.String(length=36), nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('customer_id', sa.String(length=36), nullable=True),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('phone', sa.String(length=32), nullable=True),
        sa.Column('channel', sa.String(length=8), nullable=True),
        sa.Column('recipient', sa.String(length=300), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.Float(), nullable=False),
        sa.Column('held_until', sa.Float(), nullable=True),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('sent_at', sa.Float(), nullable=True),
        sa.Column('last_error', sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint('feedback_id'),
    )
    op.create_index(
        'ix_follow_up_messages_due', 'follow_up_messages', ['status', 'next_attempt_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_follow_up_messages_due', table_name='follow_up_messages')
    op.drop_table('follow_up_messages')
