"""taxonomy versions: categories as published data (#20 §3)

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
    op.create_table(
        'taxonomy_versions',
        sa.Column('version', sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column('published_at', sa.Float(), nullable=False),
        sa.Column('published_by', sa.String(length=64), nullable=False),
        sa.Column('document', sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('taxonomy_versions')
