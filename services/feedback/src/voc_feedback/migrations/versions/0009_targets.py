"""targets per store and per area (#20 §5): NPS, CSAT, time to acknowledge and resolve, recovery
rate

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'targets',
        sa.Column('place_kind', sa.String(length=8), nullable=False),
        sa.Column('place_id', sa.String(length=64), nullable=False),
        sa.Column('metric', sa.String(length=32), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('place_kind', 'place_id', 'metric'),
    )


def downgrade() -> None:
    op.drop_table('targets')
