"""staff token revocations; the audit log becomes the platform's (#20): the authenticated
actor with its role, the name an admin-token caller declared (on_behalf_of, no longer inside
`actor`), and a target (`customer:<id>`) instead of the customer id

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from voc_platform.audit import AUDIT_INDEXES
from voc_platform.identity import create_revocations_table


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_revocations_table(op)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_role', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('on_behalf_of', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('target', sa.String(length=200), nullable=True))
        batch_op.alter_column('action', existing_type=sa.String(length=32), type_=sa.String(length=64))
    op.execute("UPDATE audit_log SET target = 'customer:' || customer_id WHERE customer_id IS NOT NULL")
    op.execute(
        "UPDATE audit_log SET on_behalf_of = substr(actor, 7), actor = 'admin' WHERE actor LIKE 'admin:%'"
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_customer')
        batch_op.drop_column('customer_id')
        for name, columns in AUDIT_INDEXES:
            batch_op.create_index(name, columns)


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.String(length=36), nullable=True))
    op.execute(
        "UPDATE audit_log SET customer_id = substr(target, 10) WHERE target LIKE 'customer:%'"
    )
    op.execute(
        "UPDATE audit_log SET actor = 'admin:' || on_behalf_of WHERE on_behalf_of IS NOT NULL"
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        for name, _ in reversed(AUDIT_INDEXES):
            batch_op.drop_index(name)
        batch_op.drop_column('target')
        batch_op.drop_column('on_behalf_of')
        batch_op.drop_column('actor_role')
        batch_op.alter_column('action', existing_type=sa.String(length=64), type_=sa.String(length=32))
        batch_op.create_index('ix_audit_customer', ['customer_id', 'at'])
    op.drop_table('staff_revocations')
