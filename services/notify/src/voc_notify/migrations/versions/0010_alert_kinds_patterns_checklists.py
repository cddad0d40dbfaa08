"""alert kinds, pattern items and the checklist's step marks (#18)

Revision ID: 0010
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='feedback', nullable=False))
        batch_op.alter_column('feedback_id', existing_type=sa.String(length=36), nullable=True)
        batch_op.add_column(sa.Column('items', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('dedupe_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('pushed_at', sa.Float(), nullable=True))
        batch_op.create_unique_constraint('uq_alerts_dedupe_key', ['dedupe_key'])
        batch_op.create_index('ix_alerts_kind_store', ['store_id', 'kind', 'category', 'status'], unique=False)
    op.create_table(
        'pattern_items',
        sa.Column('feedback_id', sa.String(length=36), nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('category', sa.String(length=32), nullable=False),
        sa.Column('customer_key', sa.String(length=64), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('alert_id', sa.String(length=36), nullable=True),
        sa.Column('excerpt', sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint('feedback_id'),
    )
    op.create_index('ix_pattern_items_window', 'pattern_items', ['store_id', 'category', 'at', 'customer_key'], unique=False)
    op.create_table(
        'alert_step_marks',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('alert_id', sa.String(length=36), nullable=False),
        sa.Column('step_index', sa.Integer(), nullable=False),
        sa.Column('done', sa.Boolean(), nullable=False),
        sa.Column('staff_id', sa.String(length=64), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_alert_step_marks_alert_id', 'alert_step_marks', ['alert_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alert_step_marks_alert_id', table_name='alert_step_marks')
    op.drop_table('alert_step_marks')
    op.drop_index('ix_pattern_items_window', table_name='pattern_items')
    op.drop_table('pattern_items')
    op.execute("DELETE FROM alerts WHERE feedback_id IS NULL")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_kind_store')
        batch_op.drop_constraint('uq_alerts_dedupe_key', type_='unique')
        batch_op.drop_column('pushed_at')
        batch_op.drop_column('dedupe_key')
        batch_op.drop_column('items')
        batch_op.alter_column('feedback_id', existing_type=sa.String(length=36), nullable=False)
        batch_op.drop_column('kind')
