"""staff_stores: staff by store, indexed, for routing

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_stores',
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('staff_id', 'store_id')
    )
    with op.batch_alter_table('staff_stores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_stores_store_id'), ['store_id'], unique=False)
    # Backfill from the JSON column the table mirrors.
    conn = op.get_bind()
    staff_stores = sa.table('staff_stores', sa.column('staff_id'), sa.column('store_id'))
    rows = []
    for staff_id, store_ids in conn.execute(sa.text('SELECT id, store_ids FROM staff')):
        stores = json.loads(store_ids) if isinstance(store_ids, str) else (store_ids or [])
        rows.extend({'staff_id': staff_id, 'store_id': s} for s in sorted(set(stores)))
    if rows:
        op.bulk_insert(staff_stores, rows)


def downgrade() -> None:
    with op.batch_alter_table('staff_stores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_stores_store_id'))
    op.drop_table('staff_stores')
