"""feedback.priority: the priority of the plan an item's alert carries (an info plan, praise, is
FYI and not an open case), filled in from the "alerted" steps already on the timelines

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# Frozen here (a migration does not follow later code): lowest first, as in taxonomy.yaml.
_RANK = {'info': 0, 'normal': 1, 'urgent': 2}
_BATCH = 1000


def _alerted_steps(bind: Any) -> Iterator[tuple[str, str]]:
    timeline = sa.table(
        'feedback_timeline', sa.column('feedback_id', sa.String), sa.column('kind', sa.String),
        sa.column('detail', sa.JSON),
    )
    query = sa.select(timeline.c.feedback_id, timeline.c.detail).where(timeline.c.kind == 'alerted')
    for feedback_id, detail in bind.execute(query):
        priority = (detail or {}).get('priority') if isinstance(detail, dict) else None
        if priority in _RANK:
            yield feedback_id, priority


def upgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.String(length=16), nullable=True))
    bind = op.get_bind()
    highest: dict[str, str] = {}  # an item merged into an alert whose priority rose: the highest
    for feedback_id, priority in _alerted_steps(bind):
        if _RANK[priority] > _RANK.get(highest.get(feedback_id, ''), -1):
            highest[feedback_id] = priority
    feedback = sa.table('feedback', sa.column('id', sa.String), sa.column('priority', sa.String))
    update = feedback.update().where(feedback.c.id == sa.bindparam('b_id')).values(priority=sa.bindparam('b_priority'))
    rows = [{'b_id': i, 'b_priority': p} for i, p in highest.items()]
    for start in range(0, len(rows), _BATCH):
        bind.execute(update, rows[start:start + _BATCH])


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_column('priority')
