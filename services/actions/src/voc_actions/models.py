"""The actions service's tables: every published set of playbook files and every published
taxonomy version, in order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voc_platform.tables import ServiceBase


class Base(ServiceBase, DeclarativeBase):
    """The actions service's tables, the platform's among them (`Base.platform_tables`)."""


outbox_table, processed_table, revocations_table, audit_table = Base.platform_tables


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


class TaxonomyVersion(Base):
    """One published taxonomy (#20 §3): the whole document (`Taxonomy.to_dict()`), retired
    categories included. The newest row is the published set; a roll back republishes an
    earlier document as the next version, so versions only grow. Version 1 is the seed."""

    __tablename__ = "taxonomy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    published_at: Mapped[float] = mapped_column(Float)
    published_by: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
