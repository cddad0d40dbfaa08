"""classification corrections by staff and managers (#17)

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'classification_corrections',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('feedback_id', sa.String(length=36), nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('sentiment', sa.String(length=16), nullable=True),
        sa.Column('category', sa.String(length=32), nullable=True),
        sa.Column('previous_sentiment', sa.String(length=16), nullable=False),
        sa.Column('previous_category', sa.String(length=32), nullable=False),
        sa.Column('model_version', sa.String(length=64), nullable=True),
        sa.Column('corrected_by', sa.String(length=64), nullable=False),
        sa.Column('corrected_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_corrections_feedback', 'classification_corrections', ['feedback_id', 'corrected_at'])
    op.create_index('ix_corrections_at', 'classification_corrections', ['corrected_at'])


def downgrade() -> None:
    op.drop_index('ix_corrections_at', table_name='classification_corrections')
    op.drop_index('ix_corrections_feedback', table_name='classification_corrections')
    op.drop_table('classification_corrections')
