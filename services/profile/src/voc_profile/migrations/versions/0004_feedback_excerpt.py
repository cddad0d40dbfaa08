"""feedback excerpt

A masked excerpt (at most 80 characters) of each feedback item's text in the customer's history,
so the context can show the customer's recent contacts (#18). NULL for items recorded before.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feedback_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('excerpt', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feedback_history', schema=None) as batch_op:
        batch_op.drop_column('excerpt')
