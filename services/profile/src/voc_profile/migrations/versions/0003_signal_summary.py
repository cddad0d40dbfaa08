"""signal summary

The feedback summary kept with each customer's stored signals (voc_profile.summary), so events
and context calls stop reading the whole history. NULL until the customer's next event or
signal refresh: readers then use the history, as before.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer_signals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customer_signals', schema=None) as batch_op:
        batch_op.drop_column('summary')
