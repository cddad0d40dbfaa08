"""The tables every service's database carries beside its own, attached to its metadata in one
call so that no service can miss one."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import MetaData, Table

from voc_platform.audit import define_audit_table
from voc_platform.identity import define_revocations_table
from voc_platform.outbox import define_platform_tables


class ServiceTables(NamedTuple):
    outbox: Table  # events waiting for the relay (voc_platform.outbox)
    processed: Table  # events already handled, for idempotent consumers
    revocations: Table  # staff tokens revoked (voc_platform.identity)
    audit: Table  # who did what (voc_platform.audit)


def define_service_tables(metadata: MetaData) -> ServiceTables:
    outbox, processed = define_platform_tables(metadata)
    return ServiceTables(outbox, processed, define_revocations_table(metadata), define_audit_table(metadata))
