"""The actions service's tables: every published set of playbook files, in order."""

from __future__ import annotations

from sqlalchemy import JSON, Float, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voc_platform.audit import define_audit_table
from voc_platform.identity import define_revocations_table
from voc_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


outbox_table, processed_table = define_platform_tables(Base.metadata)
revocations_table = define_revocations_table(Base.metadata)  # staff tokens revoked (voc_platform.identity)
audit_table = define_audit_table(Base.metadata)  # who did what (voc_platform.audit)


class Publication(Base):
    """One accepted `PUT /v1/playbooks`: its YAML files exactly as published.

    The live library is every publication replayed in order, so old versions stay available
    and every replica rebuilds the same library from the database.
    """

    __tablename__ = "playbook_publications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    published_at: Mapped[float] = mapped_column(Float)
    published_by: Mapped[str] = mapped_column(String(64))
    files: Mapped[dict[str, str]] = mapped_column(JSON)  # file name -> YAML text
    playbook_ids: Mapped[list[str]] = mapped_column(JSON)
