"""staff department membership: a department is told about the categories it owns (#20 §3)

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff') as batch:
        batch.add_column(sa.Column('department_id', sa.String(length=40), nullable=True))
        batch.create_index('ix_staff_department_id', ['department_id'])


def downgrade() -> None:
    with op.batch_alter_table('staff') as batch:
        batch.drop_index('ix_staff_department_id')
        batch.drop_column('department_id')
