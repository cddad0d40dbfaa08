"""alerts.redacted_at: when what the customer and staff wrote was removed (erasure, or the
retention of VOC_RETENTION_DAYS), and the index the retention pass reads the oldest alerts kept
by. The column is nullable (ALTER TABLE ADD COLUMN, no rewrite); rows before it count as kept,
and one an erasure redacted before is redacted again by the retention, to the same result.

On PostgreSQL the index is built `CONCURRENTLY`, outside a transaction: a plain CREATE INDEX
holds off every write to the table while it builds (every alert ever made; new ones are written many times a second). A build that failed half way
leaves an invalid index, dropped before building again, and the column already added.

Revision ID: 0020
Revises: 0019
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

TABLE = 'alerts'
INDEX = 'ix_alerts_retention'
COLUMNS = ['redacted_at', 'created_at']


def upgrade() -> None:
    # The column is committed before a PostgreSQL index build that may fail half way (the
    # revision is stamped after it): the next start finds it there.
    if 'redacted_at' not in {c['name'] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}:
        op.add_column(TABLE, sa.Column('redacted_at', sa.Float(), nullable=True))
    if op.get_bind().dialect.name != 'postgresql':
        op.create_index(INDEX, TABLE, COLUMNS)
        return
    with op.get_context().autocommit_block():
        invalid = op.get_bind().execute(
            sa.text(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :name AND NOT i.indisvalid"
            ),
            {"name": INDEX},
        ).first()
        if invalid is not None:
            op.drop_index(INDEX, table_name=TABLE, postgresql_concurrently=True, if_exists=True)
        op.create_index(INDEX, TABLE, COLUMNS, postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name=TABLE, postgresql_concurrently=True, if_exists=True)
    else:
        op.drop_index(INDEX, table_name=TABLE)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_column('redacted_at')
