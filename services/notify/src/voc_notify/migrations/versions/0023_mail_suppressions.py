"""mail suppressions

E-mail addresses a mail server said can never receive (a hard bounce), kept as an HMAC: no
follow-up is mailed to one again. A new table, and a nullable column on follow_up_messages (the
HMAC of the address a message went to; ALTER TABLE ADD COLUMN): nothing existing is rewritten.

Revision ID: 0023
Revises: 0022
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'mail_suppressions',
        sa.Column('address_key', sa.String(length=64), nullable=False),
        sa.Column('recipient', sa.String(length=300), nullable=False),
        sa.Column('customer_id', sa.String(length=36), nullable=True),
        sa.Column('feedback_id', sa.String(length=36), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('suppressed_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('address_key'),
    )
    op.create_index(op.f('ix_mail_suppressions_customer_id'), 'mail_suppressions', ['customer_id'], unique=False)
    op.create_index(op.f('ix_mail_suppressions_feedback_id'), 'mail_suppressions', ['feedback_id'], unique=False)
    op.create_index(op.f('ix_mail_suppressions_suppressed_at'), 'mail_suppressions', ['suppressed_at'], unique=False)
    op.add_column('follow_up_messages', sa.Column('recipient_key', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('follow_up_messages') as batch:
        batch.drop_column('recipient_key')
    op.drop_index(op.f('ix_mail_suppressions_suppressed_at'), table_name='mail_suppressions')
    op.drop_index(op.f('ix_mail_suppressions_feedback_id'), table_name='mail_suppressions')
    op.drop_index(op.f('ix_mail_suppressions_customer_id'), table_name='mail_suppressions')
    op.drop_table('mail_suppressions')
