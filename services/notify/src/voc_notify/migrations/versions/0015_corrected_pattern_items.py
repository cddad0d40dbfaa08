"""corrected pattern items, the plan's customer name for erasure

A pattern item takes the category staff corrected it to (voc.feedback.corrected); `corrected_at`
keeps the correction's time so a late older correction changes nothing (#18 with #17). An
alert keeps the name its plan was rendered with (`customer_name`, never served) so erasure can
take it out of the plan's title and steps (#18 §6); NULL for alerts made before.

Revision ID: 0015
Revises: 0012
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pattern_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('corrected_at', sa.Float(), nullable=True))
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_name', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('customer_name')
    with op.batch_alter_table('pattern_items', schema=None) as batch_op:
        batch_op.drop_column('corrected_at')
