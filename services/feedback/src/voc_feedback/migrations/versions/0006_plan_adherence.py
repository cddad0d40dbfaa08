"""plan adherence per resolved alert (#18)

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'plan_adherence',
        sa.Column('alert_id', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('playbook_id', sa.String(length=80), nullable=False),
        sa.Column('steps_done', sa.Integer(), nullable=False),
        sa.Column('steps_total', sa.Integer(), nullable=False),
        sa.Column('resolved_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('alert_id'),
    )
    op.create_index('ix_plan_adherence_store_id', 'plan_adherence', ['store_id'], unique=False)
    op.create_index('ix_plan_adherence_resolved_at', 'plan_adherence', ['resolved_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_plan_adherence_resolved_at', table_name='plan_adherence')
    op.drop_index('ix_plan_adherence_store_id', table_name='plan_adherence')
    op.drop_table('plan_adherence')
