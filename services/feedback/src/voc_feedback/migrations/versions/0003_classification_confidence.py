"""classification confidence and model version (#17)

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
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('category_confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('model_version', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_column('model_version')
        batch_op.drop_column('category_confidence')
        batch_op.drop_column('confidence')
