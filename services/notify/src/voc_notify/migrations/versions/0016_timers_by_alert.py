"""escalation timers by alert, kind and status

The delivery watchdog looks up each recent unshown delivery's pending ack timer every second;
with only `ix_timers_due` (status, fire_at) SQLite read every pending timer due soon for each
delivery.

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('escalation_timers', schema=None) as batch_op:
        batch_op.create_index('ix_timers_alert_kind_status', ['alert_id', 'kind', 'status', 'fire_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('escalation_timers', schema=None) as batch_op:
        batch_op.drop_index('ix_timers_alert_kind_status')
