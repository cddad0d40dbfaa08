"""webhook deliveries by endpoint, status and due time

The dispatcher leases each active endpoint's due deliveries with an indexed read of its own
(at most its share of the slots): with only `ix_webhook_deliveries_due` (status,
next_attempt_at), a read leaving out the endpoints at their share walked their whole backlog,
and a read of the oldest due ones reached an endpoint only behind another's backlog. The new
index starts with endpoint_id, so it also serves what `ix_webhook_deliveries_endpoint_id` did.

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(
            'ix_webhook_deliveries_endpoint_due', ['endpoint_id', 'status', 'next_attempt_at'], unique=False
        )
        batch_op.drop_index('ix_webhook_deliveries_endpoint_id')


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_endpoint_id', ['endpoint_id'], unique=False)
        batch_op.drop_index('ix_webhook_deliveries_endpoint_due')
