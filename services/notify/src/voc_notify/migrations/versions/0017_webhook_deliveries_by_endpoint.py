"""webhook deliveries by endpoint, status and due time

The dispatcher leases each active endpoint's due deliveries with an indexed read of its own
(at most its share of the slots): with only `ix_webhook_deliveries_due` (status,
next_attempt_at), a read leaving out the endpoints at their share walked their whole backlog,
and a read of the oldest due ones reached an endpoint only behind another's backlog. The new
index starts with endpoint_id, so it also serves what `ix_webhook_deliveries_endpoint_id` did.

On PostgreSQL both indexes change `CONCURRENTLY`, outside a transaction: a plain CREATE INDEX
holds off every write to the table while it builds (30 days of deliveries), and the replicas of
the previous version keep enqueueing during a rolling upgrade. A build that failed half way
leaves an invalid index, dropped before building again.

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


NEW = 'ix_webhook_deliveries_endpoint_due'
OLD = 'ix_webhook_deliveries_endpoint_id'
TABLE = 'webhook_deliveries'


def _drop_if_invalid(name: str) -> None:
    invalid = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :name AND NOT i.indisvalid"
        ),
        {"name": name},
    ).first()
    if invalid is not None:
        op.drop_index(name, table_name=TABLE, postgresql_concurrently=True, if_exists=True)


def _swap_concurrently(create: str, columns: list[str], drop: str) -> None:
    with op.get_context().autocommit_block():
        _drop_if_invalid(create)
        op.create_index(create, TABLE, columns, postgresql_concurrently=True, if_not_exists=True)
        op.drop_index(drop, table_name=TABLE, postgresql_concurrently=True, if_exists=True)


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _swap_concurrently(NEW, ['endpoint_id', 'status', 'next_attempt_at'], OLD)
        return
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(NEW, ['endpoint_id', 'status', 'next_attempt_at'], unique=False)
        batch_op.drop_index(OLD)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _swap_concurrently(OLD, ['endpoint_id'], NEW)
        return
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(OLD, ['endpoint_id'], unique=False)
        batch_op.drop_index(NEW)
