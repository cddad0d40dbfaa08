"""The tables every service's database carries beside its own, attached to its metadata in one
call so that no service can miss one."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

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


class ServiceBase:
    """Mixed into a service's declarative base, `class Base(ServiceBase, DeclarativeBase)`: the
    base's own metadata (each service has one) gets the platform's tables as it is made, and
    `Base.platform_tables` names them. A mixin rather than a DeclarativeBase subclass because
    SQLAlchemy gives a metadata only to a direct subclass of DeclarativeBase."""

    platform_tables: ClassVar[ServiceTables]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)  # DeclarativeBase's: the registry and metadata
        if DeclarativeBase in cls.__bases__ and issubclass(cls, DeclarativeBase):
            cls.platform_tables = define_service_tables(cls.metadata)
