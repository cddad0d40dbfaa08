"""follow-up asked again

A follow-up of a case that reopened one the customer answered unhappy is worded as asking again
(FollowUpRequested.again). One column with a server default: ALTER TABLE ADD COLUMN, no table
rebuild on SQLite, no rewrite on PostgreSQL; rows before it were first asks.

Revision ID: 0019
Revises: 0018
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'follow_up_messages', sa.Column('again', sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table('follow_up_messages', schema=None) as batch_op:
        batch_op.drop_column('again')
