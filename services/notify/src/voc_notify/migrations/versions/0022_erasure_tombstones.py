"""erasure tombstones

The names an erasure gave (`voc.profile.customer_erased`: the customer, their feedback items),
kept for a while: an event about one of them that arrives after the erasure makes no copy of the
customer. A new table: nothing existing is rewritten.

Revision ID: 0022
Revises: 0021
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'erasure_tombstones',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('erased_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index(op.f('ix_erasure_tombstones_erased_at'), 'erasure_tombstones', ['erased_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_erasure_tombstones_erased_at'), table_name='erasure_tombstones')
    op.drop_table('erasure_tombstones')
