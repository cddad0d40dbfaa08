"""staff token revocations; the audit log becomes the platform's (#20): the authenticated
actor with its role, the name an admin-token caller declared (on_behalf_of, no longer inside
`actor`), and a target (`customer:<id>`) instead of the customer id

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
        'staff_revocations',
        sa.Column('staff_id', sa.String(length=64), nullable=False),
        sa.Column('revoked_before_ms', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('recorded_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('staff_id'),
    )
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
        batch_op.create_index('ix_audit_at', ['at'])
        batch_op.create_index('ix_audit_target', ['target', 'at'])
        batch_op.create_index('ix_audit_actor', ['actor', 'at'])


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
        batch_op.drop_index('ix_audit_actor')
        batch_op.drop_index('ix_audit_target')
        batch_op.drop_index('ix_audit_at')
        batch_op.drop_column('target')
        batch_op.drop_column('on_behalf_of')
        batch_op.drop_column('actor_role')
        batch_op.alter_column('action', existing_type=sa.String(length=64), type_=sa.String(length=32))
        batch_op.create_index('ix_audit_customer', ['customer_id', 'at'])
    op.drop_table('staff_revocations')
