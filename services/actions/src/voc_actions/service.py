"""Actions domain logic: the live playbook library, publishing, and plan lookup."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_actions.models import Publication, outbox_table
from voc_actions.playbooks import (
    Facts,
    Library,
    Plan,
    Playbook,
    PlaybookValidationError,
    default_library,
    parse_playbooks,
    read_directory,
    render_plan,
)
from voc_actions.playbooks import library_path as bundled_library_path
from voc_platform.outbox import add_event

SUBJECT_PUBLISHED = "voc.actions.playbooks_published"
#: pg_advisory_xact_lock key serialising publishes across replicas ("voc-pbk" in hex-ish).
PUBLISH_LOCK_KEY = 0x766F63_70626B

log = logging.getLogger(__name__)


@dataclass
class LiveLibrary:
    """The library this replica serves, rebuilt from the publications table."""

    library: Library
    publication_id: int = 0


async def latest_publication_id(session: AsyncSession) -> int:
    value = await session.scalar(select(func.max(Publication.id)))
    return int(value or 0)


async def seed_bundled_library(session: AsyncSession) -> bool:
    """First start: publish the shipped library so there is always a working set."""
    if await latest_publication_id(session):
        return False
    files = dict(read_directory(bundled_library_path()))
    library = default_library()
    session.add(
        Publication(
            published_at=time.time(),
            published_by="bundled",
            files=files,
            playbook_ids=sorted(p.id for p in library.playbooks),
        )
    )
    await session.flush()
    return True


async def rebuild(session: AsyncSession) -> LiveLibrary:
    """Replay every publication in order; the result has each id's versions.

    Publications were validated when accepted, so one that no longer applies (two replicas
    racing to publish the same version) is skipped with an error log rather than leaving the
    replica without a library.
    """
    library = Library()
    last = 0
    for pub in await session.scalars(select(Publication).order_by(Publication.id)):
        try:
            parsed = parse_playbooks(sorted(pub.files.items()))
            library = library.with_published(parsed) if len(library) else parsed
        except PlaybookValidationError as exc:
            log.error("publication %d skipped on replay: %s", pub.id, exc)
        last = pub.id
    return LiveLibrary(library=library, publication_id=last)


async def _lock_publications(session: AsyncSession) -> None:
    """Serialise publishes across replicas for the rest of this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PUBLISH_LOCK_KEY})
    else:
        # SQLite: a write (even of no rows) takes the database's write lock now, before the
        # read below, so another process cannot publish between our read and our insert.
        await session.execute(update(Publication).where(Publication.id == -1).values(published_by="x"))


@dataclass(frozen=True)
class Published:
    library: Library  # the merged library to serve from now on
    publication_id: int
    playbooks: list[Playbook]  # what this publication added, by id


async def publish(
    session: AsyncSession, *, live: LiveLibrary, files: dict[str, str], actor: str
) -> Published:
    """Validate, then record a publication; raises PlaybookValidationError, nothing written.

    Validation runs against the database's latest publication, not this replica's copy, which
    may lag by one event: a version check against a stale set could accept a regress.
    """
    parsed = parse_playbooks(sorted(files.items()))
    await _lock_publications(session)
    base = live.library
    if await latest_publication_id(session) != live.publication_id:
        base = (await rebuild(session)).library
    merged = base.with_published(parsed)
    pub = Publication(
        published_at=time.time(),
        published_by=actor,
        files=files,
        playbook_ids=sorted(p.id for p in parsed.playbooks),
    )
    session.add(pub)
    await session.flush()
    await add_event(
        session,
        outbox_table,
        subject=SUBJECT_PUBLISHED,
        message=events_pb2.PlaybooksPublished(
            publication_id=pub.id, playbook_ids=pub.playbook_ids, published_at_ms=int(pub.published_at * 1000)
        ),
        event_id=f"playbooks:{pub.id}",
    )
    return Published(merged, pub.id, parsed.playbooks)


def lookup(
    library: Library,
    *,
    feedback: dict[str, Any],
    customer: dict[str, Any],
    store: dict[str, Any],
    language: str,
    local_time: datetime | None,
) -> Plan:
    facts = Facts(
        category=feedback.get("category") or "other",
        severity=feedback.get("severity") or None,
        sentiment=feedback.get("sentiment") or None,
        channel=feedback.get("channel") or None,
        touchpoint=feedback.get("touchpoint") or None,
        store_id=feedback.get("store_id") or None,
        store_format=store.get("format") or None,
        store_region=store.get("region") or None,
        language=feedback.get("language") or None,
        customer_tier=customer.get("tier") or None,
        signals=dict(customer.get("signals") or {}),
        local_time=local_time,
    )
    match = library.match(facts)
    variables = {
        "name": customer.get("name") or None,
        "tier": customer.get("tier") or None,
        "last_visit": customer.get("last_visit") or None,
        "repeat_count": customer.get("repeat_count") or None,
    }
    return render_plan(
        match,
        language=language,
        customer={k: v for k, v in variables.items() if v is not None},
        store={"name": store.get("name")} if store.get("name") else None,
    )
