"""corrected pattern items

A pattern item takes the category staff corrected it to (voc.feedback.corrected); `corrected_at`
keeps the correction's time so a late older correction changes nothing (#18 with #17).

Revision ID: 0015
Revises: 0012
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pattern_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('corrected_at', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pattern_items', schema=None) as batch_op:
        batch_op.drop_column('corrected_at')
