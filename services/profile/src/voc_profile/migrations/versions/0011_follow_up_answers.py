"""follow-up answers

A follow-up survey's unhappy answer reopens the case it answers (`FeedbackReceived.reopens_id`):
profile keeps that link with the item in the customer's history, so the answer shows among the
customer's contacts as a follow-up answer but never counts as another complaint (repeat issue,
complaint count, chronic rank). NULL for every other item, and for items recorded before.

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feedback_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reopens_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feedback_history', schema=None) as batch_op:
        batch_op.drop_column('reopens_id')
