"""webhook secret kept after rotation

A rotated secret keeps signing beside the new one for a while (a second signature in the same
`webhook-signature` header, as Standard Webhooks allows), so a receiver can switch without a
delivery failing verification: the replaced secret (encrypted like the current one) and until
when it signs. Two nullable columns: ALTER TABLE ADD COLUMN, no table rebuild on SQLite, no
rewrite on PostgreSQL.

Revision ID: 0018
Revises: 0017
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('webhook_endpoints', sa.Column('previous_secret', sa.String(length=200), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('previous_secret_until', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_until')
        batch_op.drop_column('previous_secret')
