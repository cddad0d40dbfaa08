"""corrected feedback labels

When staff correct a feedback item's category or sentiment (voc.feedback.corrected), profile's
copy of the item takes the corrected labels; `corrected_at` keeps the correction's time so a late
older correction changes nothing (#17 with #18). NULL for items never corrected.

Revision ID: 0010
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feedback_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('corrected_at', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feedback_history', schema=None) as batch_op:
        batch_op.drop_column('corrected_at')
