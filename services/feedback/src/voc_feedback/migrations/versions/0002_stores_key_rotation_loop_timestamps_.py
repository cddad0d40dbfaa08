"""stores, key rotation, loop timestamps, follow-ups

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
    op.create_table('stores',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('area_id', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stores_area_id'), ['area_id'], unique=False)

    op.create_table('follow_ups',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('feedback_id', sa.String(length=36), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('answered_at', sa.Float(), nullable=True),
    sa.Column('csat', sa.Integer(), nullable=True),
    sa.Column('satisfied', sa.Boolean(), nullable=True),
    sa.Column('revisit_intent', sa.Boolean(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('reopened_feedback_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('follow_ups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_follow_ups_feedback_id'), ['feedback_id'], unique=True)

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('replaced_by', sa.String(length=36), nullable=True))

    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alerted_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('escalated', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('reopens_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_feedback_reopens_id'), ['reopens_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_reopens_id'))
        batch_op.drop_column('reopens_id')
        batch_op.drop_column('escalated')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('alerted_at')

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('replaced_by')
        batch_op.drop_column('expires_at')

    with op.batch_alter_table('follow_ups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follow_ups_feedback_id'))

    op.drop_table('follow_ups')
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stores_area_id'))

    op.drop_table('stores')
