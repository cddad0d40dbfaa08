"""staff token revocations and the audit log of who did what (#20)

Revision ID: 0005
Revises: 0003
"""
from __future__ import annotations

from alembic import op

from voc_platform.audit import create_audit_log, drop_audit_log
from voc_platform.identity import create_revocations_table


revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_revocations_table(op)
    create_audit_log(op)


def downgrade() -> None:
    drop_audit_log(op)
    op.drop_table('staff_revocations')
