"""merges signals alerts audit import

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
    op.create_table('alert_history',
    sa.Column('alert_id', sa.String(length=36), nullable=False),
    sa.Column('feedback_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=True),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('alert_id')
    )
    with op.batch_alter_table('alert_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_history_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_history_feedback_id'), ['feedback_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_customer', ['customer_id', 'at'], unique=False)

    op.create_table('customer_merges',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('survivor_id', sa.String(length=36), nullable=False),
    sa.Column('merged_id', sa.String(length=36), nullable=False),
    sa.Column('identifiers', sa.JSON(), nullable=False),
    sa.Column('feedback_ids', sa.JSON(), nullable=False),
    sa.Column('visit_ids', sa.JSON(), nullable=False),
    sa.Column('filled', sa.JSON(), nullable=False),
    sa.Column('trigger', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('undone_at', sa.Float(), nullable=True),
    sa.Column('undone_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customer_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_merges_merged_id'), ['merged_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_merges_survivor_id'), ['survivor_id'], unique=False)

    op.create_table('customer_signals',
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('repeat_issue', sa.Boolean(), nullable=False),
    sa.Column('score_swing', sa.Boolean(), nullable=False),
    sa.Column('complaint_count_90d', sa.Integer(), nullable=False),
    sa.Column('low_satisfaction', sa.Boolean(), nullable=False),
    sa.Column('churn_risk', sa.Boolean(), nullable=False),
    sa.Column('satisfaction_mean', sa.Float(), nullable=True),
    sa.Column('pending_intent_at', sa.Float(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('refresh_at', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id')
    )
    with op.batch_alter_table('customer_signals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_signals_refresh_at'), ['refresh_at'], unique=False)
        batch_op.create_index('ix_signals_churn', ['churn_risk', 'customer_id'], unique=False)
        batch_op.create_index('ix_signals_complaints', ['complaint_count_90d', 'customer_id'], unique=False)
        batch_op.create_index('ix_signals_low', ['low_satisfaction', 'customer_id'], unique=False)
        batch_op.create_index('ix_signals_repeat', ['repeat_issue', 'customer_id'], unique=False)
        batch_op.create_index('ix_signals_swing', ['score_swing', 'customer_id'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('household_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('household_relation', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('merged_into', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('erased_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('import_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_customers_household_id'), ['household_id'], unique=False)
        batch_op.create_index('ix_customers_ltv', ['lifetime_value'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_merged_into'), ['merged_into'], unique=False)
        batch_op.create_index('ix_customers_tier', ['tier'], unique=False)

    with op.batch_alter_table('feedback_history', schema=None) as batch_op:
        batch_op.create_index('ix_history_intent', ['store_id', 'occurred_at'], unique=False)

    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ux_visits_natural', ['customer_id', 'store_id', 'visited_at'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('ux_visits_natural')

    with op.batch_alter_table('feedback_history', schema=None) as batch_op:
        batch_op.drop_index('ix_history_intent')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_tier')
        batch_op.drop_index(batch_op.f('ix_customers_merged_into'))
        batch_op.drop_index('ix_customers_ltv')
        batch_op.drop_index(batch_op.f('ix_customers_household_id'))
        batch_op.drop_column('import_id')
        batch_op.drop_column('erased_at')
        batch_op.drop_column('merged_into')
        batch_op.drop_column('household_relation')
        batch_op.drop_column('household_id')

    with op.batch_alter_table('customer_signals', schema=None) as batch_op:
        batch_op.drop_index('ix_signals_swing')
        batch_op.drop_index('ix_signals_repeat')
        batch_op.drop_index('ix_signals_low')
        batch_op.drop_index('ix_signals_complaints')
        batch_op.drop_index('ix_signals_churn')
        batch_op.drop_index(batch_op.f('ix_customer_signals_refresh_at'))

    op.drop_table('customer_signals')
    with op.batch_alter_table('customer_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_merges_survivor_id'))
        batch_op.drop_index(batch_op.f('ix_customer_merges_merged_id'))

    op.drop_table('customer_merges')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_customer')

    op.drop_table('audit_log')
    with op.batch_alter_table('alert_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_history_feedback_id'))
        batch_op.drop_index(batch_op.f('ix_alert_history_customer_id'))

    op.drop_table('alert_history')
