"""follow-up undelivered channel

The channel a delivery report said the follow-up never arrived by (a bounced e-mail): the
message is then tried once by SMS, and that channel is not chosen again. One nullable column:
ALTER TABLE ADD COLUMN, no table rebuild on SQLite, no rewrite on PostgreSQL.

Revision ID: 0021
Revises: 0020
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('follow_up_messages', sa.Column('undelivered_channel', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('follow_up_messages', schema=None) as batch_op:
        batch_op.drop_column('undelivered_channel')
