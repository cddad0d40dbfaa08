"""outreach work (#20): assignments of list customers to staff, and the contacts recorded on them

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outreach_assignments',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('customer_id', sa.String(length=36), nullable=False),
        sa.Column('list_kind', sa.String(length=32), nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('assignee_id', sa.String(length=64), nullable=False),
        sa.Column('assignee_name', sa.String(length=100), nullable=False),
        sa.Column('assigned_by', sa.String(length=100), nullable=False),
        sa.Column('assigned_at', sa.Float(), nullable=False),
        sa.Column('due_at', sa.Float(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('active_key', sa.String(length=120), nullable=True),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('active_key'),
    )
    op.create_index('ix_outreach_assignments_customer_id', 'outreach_assignments', ['customer_id'])
    op.create_index('ix_outreach_store', 'outreach_assignments', ['store_id', 'assigned_at'])
    op.create_index('ix_outreach_assignee', 'outreach_assignments', ['assignee_id', 'status'])
    op.create_table(
        'outreach_contacts',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('assignment_id', sa.String(length=36), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('contacted_by', sa.String(length=100), nullable=False),
        sa.Column('contacted_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['assignment_id'], ['outreach_assignments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_outreach_contacts_assignment_id', 'outreach_contacts', ['assignment_id'])


def downgrade() -> None:
    op.drop_index('ix_outreach_contacts_assignment_id', table_name='outreach_contacts')
    op.drop_table('outreach_contacts')
    op.drop_index('ix_outreach_assignee', table_name='outreach_assignments')
    op.drop_index('ix_outreach_store', table_name='outreach_assignments')
    op.drop_index('ix_outreach_assignments_customer_id', table_name='outreach_assignments')
    op.drop_table('outreach_assignments')
