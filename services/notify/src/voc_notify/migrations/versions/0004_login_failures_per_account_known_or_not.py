"""login failures per account, known or not

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
    op.create_table('login_failures',
    sa.Column('account_key', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.Float(), nullable=False),
    sa.Column('last_failed_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('account_key')
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failures_last_failed_at'), ['last_failed_at'], unique=False)

    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy of `staff`: dropping the
    # old table would cascade to devices, shifts and staff_stores (foreign keys are on).
    # A lock in progress is forgotten: the staff member may try again at once.
    op.drop_column('staff', 'failed_logins')
    op.drop_column('staff', 'locked_until')


def downgrade() -> None:
    op.add_column('staff', sa.Column('locked_until', sa.Float(), nullable=False, server_default='0'))
    op.add_column('staff', sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failures_last_failed_at'))

    op.drop_table('login_failures')
