"""Taxonomy as data (#20 §3): publishing a taxonomy version (with, optionally, the playbooks its
new categories need, in the same transaction), rolling back to an earlier one, and serving the
newest on every replica. A version is refused whole (nothing written) when an active category has
no default playbook or a category it retires is still named by playbooks (naming them)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_actions import publishing
from voc_actions.live import LiveLibrary
from voc_actions.models import TaxonomyVersion, outbox_table
from voc_actions.playbooks import Library
from voc_actions.publishing import PublishParts
from voc_platform import taxonomy
from voc_platform.db import Database
from voc_platform.errors import Conflict, FieldError, Invalid
from voc_platform.identity import Actor
from voc_platform.outbox import add_event
from voc_platform.taxonomy import Taxonomy
from voc_platform.taxonomy_live import SUBJECT_PUBLISHED, to_proto

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checked:
    taxonomy: Taxonomy
    library: Library | None  # the library with the request's playbooks, when it carried any
    retired: tuple[str, ...]  # categories this version retires


async def latest(session: AsyncSession) -> Taxonomy:
    """The newest published version (the seed when none is recorded yet)."""
    row = await session.scalar(select(TaxonomyVersion).order_by(TaxonomyVersion.version.desc()).limit(1))
    if row is None:
        return taxonomy.seed()
    return taxonomy.parse_taxonomy(row.document, version=row.version)


async def _check(
    session: AsyncSession, *, live: LiveLibrary, document: Any, files: dict[str, str], actor: str
) -> tuple[Checked, publishing.Published | None, Taxonomy]:
    """The version `document` would make, checked against the playbooks (those published plus
    `files`, recorded here when the whole is valid); `Invalid` naming every problem."""
    previous = await latest(session)
    candidate = taxonomy.parse_taxonomy(document, version=previous.version + 1, previous=previous)
    published: publishing.Published | None = None
    with taxonomy.candidate(candidate):
        if files:
            published = await publishing.record_publication(session, live=live, files=files, actor=actor)
            library = published.library
        else:
            library = live.library
        errors = _playbook_problems(candidate, previous, library)
    if errors:
        raise Invalid(
            "The taxonomy would leave playbooks without a category or categories without a"
            f" default playbook: {'; '.join(e.message for e in errors)}.",
            errors=errors,
        )
    retired = tuple(c.id for c in candidate.categories if c.retired and previous.accepts(c.id))
    return Checked(candidate, published.library if published else None, retired), published, previous


def _playbook_problems(candidate: Taxonomy, previous: Taxonomy, library: Library) -> list[FieldError]:
    errors: list[FieldError] = []
    for cat in candidate.active:
        if library.default_for(cat) is None:
            errors.append(FieldError(
                f"categories.{cat}",
                f"no default playbook for {cat!r}: publish one with it (when: {{category: {cat}}})",
            ))  # fmt: skip
    for gone in candidate.categories:
        if not gone.retired or not previous.accepts(gone.id):
            continue
        orphans = sorted(
            p.id
            for p in library.playbooks
            if any(c.key == "category" and gone.id in c.values for c in p.conditions)
        )
        if orphans:
            errors.append(FieldError(
                f"categories.{gone.id}",
                f"retiring {gone.id!r} orphans playbooks {', '.join(orphans)}: publish versions of"
                " them that no longer name it",
            ))  # fmt: skip
    return errors


async def _record(session: AsyncSession, checked: Checked, *, actor: str) -> TaxonomyVersion:
    now = time.time()
    row = TaxonomyVersion(
        version=checked.taxonomy.version,
        published_at=now,
        published_by=actor,
        document=checked.taxonomy.to_dict(),
    )
    session.add(row)
    await session.flush()
    await add_event(
        session,
        outbox_table,
        subject=SUBJECT_PUBLISHED,
        message=events_pb2.TaxonomyPublished(
            taxonomy=to_proto(checked.taxonomy), published_at_ms=int(now * 1000)
        ),
        event_id=f"taxonomy:{row.version}",
    )
    return row


async def validate(parts: PublishParts, *, document: Any, files: dict[str, str]) -> Checked:
    """What publishing would make, or `Invalid` with every problem; nothing is written."""
    async with parts.database.session() as session:
        checked, _, _ = await _check(session, live=parts.live, document=document, files=files, actor="")
        await session.rollback()
    return checked


async def publish(
    parts: PublishParts,
    *,
    document: Any,
    files: dict[str, str],
    actor: Actor,
    action: str = "taxonomy.publish",
    detail: dict[str, Any] | None = None,
) -> Checked:
    """Record the next taxonomy version (and `files`' playbooks) with its event and audit entry
    in one transaction, then serve both on this replica (the others reload on the events)."""
    database, live, audit = parts.database, parts.live, parts.audit
    async with database.transaction() as session:
        await publishing.lock_publications(session)
        checked, published, previous = await _check(
            session, live=live, document=document, files=files, actor=actor.name
        )
        await _record(session, checked, actor=actor.name)
        added = sorted(set(checked.taxonomy.known) - set(previous.known))
        await audit.record(
            session,
            actor=actor,
            action=action,
            target=f"taxonomy:{checked.taxonomy.version}",
            detail={
                **(detail or {}),
                "added": added[:100],
                "retired": list(checked.retired)[:100],
                "playbooks": sorted(files)[:100],
            },
        )
    taxonomy.serve(checked.taxonomy, force=True)
    if published is not None:
        live.serve(published.library, published.publication_id)
    return checked


async def roll_back(parts: PublishParts, *, to_version: int | None, actor: Actor) -> Checked:
    """Republish an earlier version's document (the one before the newest, or `to_version`) as
    the next version, checked like any other: 409 when there is none."""
    async with parts.database.session() as session:
        newest = await latest(session)
        wanted = to_version if to_version is not None else newest.version - 1
        row = await session.get(TaxonomyVersion, wanted) if 1 <= wanted < newest.version else None
        document = row.document if row is not None else None
    if document is None and wanted == 1 and newest.version > 1:
        document = taxonomy.seed().to_dict()
    if document is None:
        raise Conflict(f"There is no earlier taxonomy version {wanted} (newest: {newest.version}).")
    return await publish(
        parts,
        document=document,
        files={},
        actor=actor,
        action="taxonomy.rollback",
        detail={"from_version": newest.version, "to_content_of": wanted},
    )


async def versions(database: Database) -> list[dict[str, Any]]:
    """Every published version, newest first: who, when, how many categories."""
    async with database.session() as session:
        rows = (await session.scalars(select(TaxonomyVersion).order_by(TaxonomyVersion.version.desc()))).all()
    return [
        {
            "version": r.version,
            "published_at": r.published_at,
            "published_by": r.published_by,
            "categories": len(r.document.get("categories", {})),
            "retired": sorted(k for k, v in r.document.get("categories", {}).items() if v.get("retired")),
        }
        for r in rows
    ]


async def seed(session: AsyncSession) -> None:
    """First start: record the built-in taxonomy (taxonomy.yaml) as version 1."""
    if await session.scalar(select(func.count()).select_from(TaxonomyVersion)):
        return
    session.add(
        TaxonomyVersion(
            version=1, published_at=time.time(), published_by="bundled", document=taxonomy.seed().to_dict()
        )
    )
    await session.flush()


async def load(database: Database) -> None:
    """At start (before the playbook library, which validates against it): seed, then serve."""
    async with database.transaction() as session:
        await seed(session)
    await reload_if_newer(database)


async def reload_if_newer(database: Database) -> bool:
    async with database.session() as session:
        newest = await latest(session)
    if taxonomy.serve(newest, force=True):
        log.info("taxonomy version %d served (%d active categories)", newest.version, len(newest.active))
        return True
    return False
