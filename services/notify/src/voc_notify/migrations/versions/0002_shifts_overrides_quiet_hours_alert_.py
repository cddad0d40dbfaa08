"""shifts, overrides, quiet hours, alert merging, held deliveries

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shift_overrides',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('starts_on', sa.String(length=10), nullable=False),
    sa.Column('ends_on', sa.String(length=10), nullable=False),
    sa.Column('on_duty', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shift_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shift_overrides_staff_id'), ['staff_id'], unique=False)

    op.create_table('shifts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('starts', sa.String(length=5), nullable=False),
    sa.Column('ends', sa.String(length=5), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shifts_staff_id'), ['staff_id'], unique=False)

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('related_feedback', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('updates', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('updated_at', sa.Float(), nullable=True))
        batch_op.create_index('ix_alerts_dedupe', ['customer_id', 'store_id', 'category', 'created_at'], unique=False)

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_until', sa.Float(), nullable=True))

    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quiet_start', sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column('quiet_end', sa.String(length=5), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.drop_column('quiet_end')
        batch_op.drop_column('quiet_start')

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('held_until')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_dedupe')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('updates')
        batch_op.drop_column('related_feedback')

    with op.batch_alter_table('shifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shifts_staff_id'))

    op.drop_table('shifts')
    with op.batch_alter_table('shift_overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shift_overrides_staff_id'))

    op.drop_table('shift_overrides')
