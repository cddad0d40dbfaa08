"""contact consent not stated

`customers.contact_consent` becomes nullable: true = agreed, false = opted out (the CRM says
so), NULL = never said (a customer created from feedback). A resolved case's follow-up is
withheld only from those who opted out (#19: "none when the customer opted out"); outreach
lists keep needing true. Rows written before keep their value: a false from before cannot be
told apart from an opt-out, so it stays one (the cautious reading).

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('contact_consent', existing_type=sa.Boolean(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE customers SET contact_consent = false WHERE contact_consent IS NULL")
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('contact_consent', existing_type=sa.Boolean(), nullable=False)
