"""classifier model registry (#17): versions, their gate figures and bundles

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'classifier_models',
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('metrics', sa.JSON(), nullable=False),
        sa.Column('training_rows', sa.Integer(), nullable=False),
        sa.Column('bundle', sa.LargeBinary(), nullable=False),
        sa.Column('promoted_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('version'),
    )
    op.create_index(
        'uq_classifier_models_active',
        'classifier_models',
        ['status'],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index('uq_classifier_models_active', table_name='classifier_models')
    op.drop_table('classifier_models')
