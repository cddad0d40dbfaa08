"""erased feedback

The feedback items an erasure named (`voc.profile.customer_erased`), kept for a while: an event
about one of them that arrives after the erasure makes no copy of the customer's words. A new
table: nothing existing is rewritten.

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
        'erased_feedback',
        sa.Column('feedback_id', sa.String(length=36), nullable=False),
        sa.Column('erased_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('feedback_id'),
    )
    op.create_index(op.f('ix_erased_feedback_erased_at'), 'erased_feedback', ['erased_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_erased_feedback_erased_at'), table_name='erased_feedback')
    op.drop_table('erased_feedback')
