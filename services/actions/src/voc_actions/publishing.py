"""Publishing playbooks: validate a set of files against the latest publication, record it with
its event in one transaction, then serve it on this replica (the others reload on the event)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_actions.errors import PlaybooksRejected
from voc_actions.live import LiveLibrary, latest_publication_id, rebuild
from voc_actions.models import Publication, outbox_table
from voc_actions.playbooks import Library, Playbook, PlaybookProblem, PlaybookValidationError, parse_playbooks
from voc_platform import taxonomy
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.errors import Conflict, NotFound
from voc_platform.identity import Actor
from voc_platform.outbox import add_event

SUBJECT_PUBLISHED = "voc.actions.playbooks_published"
#: pg_advisory_xact_lock key serialising publishes across replicas ("voc-pbk" in hex-ish).
PUBLISH_LOCK_KEY = 0x766F63_70626B


@dataclass(frozen=True)
class Published:
    library: Library  # the merged library to serve from now on
    publication_id: int
    playbooks: list[Playbook]  # what this publication added, by id


@dataclass(frozen=True, slots=True)
class PublishParts:
    """What publishing (playbooks and the taxonomy alike) needs of the app: the database it is
    recorded in, this replica's live library (checked against, then serving it) and the audit log."""

    database: Database
    live: LiveLibrary
    audit: Audit


async def publish(parts: PublishParts, *, files: dict[str, str], actor: Actor) -> Published:
    """Record a publication (`record_publication`) and its audit entry and, once committed,
    serve it on this replica."""
    database, live, audit = parts.database, parts.live, parts.audit
    async with database.session() as session:
        seen = await latest_library(session, live)
    async with database.transaction() as session:
        published = await record_publication(session, live=live, files=files, actor=actor.name, seen=seen)
        await audit.record(
            session,
            actor=actor,
            action="playbooks.publish",
            target=f"publication:{published.publication_id}",
            detail={
                "files": sorted(files)[:100],
                "playbooks": [f"{p.id}@{p.version}" for p in published.playbooks][:100],
            },
        )
    live.serve(published.library, published.publication_id)
    return published


_VERSION_LINE = re.compile(r"^version:[ \t]*\d+[ \t]*(#.*)?$", re.MULTILINE)


async def roll_back(
    parts: PublishParts, *, playbook_id: str, to_version: int | None, actor: Actor
) -> Published:
    """Make an earlier version of a playbook (the one before the active, or `to_version`) the
    active one again: its own file, as published then, republished as the next version (versions
    only grow, so history keeps both), validated and recorded like any publication. Worked out
    from the database's latest library; `Conflict` when another publication overtook it."""
    database, live, audit = parts.database, parts.live, parts.audit
    async with database.session() as session:
        seen = await latest_library(session, live)
    versions = seen.library.versions(playbook_id)
    if not versions:
        raise NotFound(f"No playbook '{playbook_id}'.")
    active = versions[-1]
    wanted = to_version if to_version is not None else active.version - 1
    earlier = next((p for p in versions if p.version == wanted), None)
    if earlier is None or wanted >= active.version:
        raise Conflict(
            f"{playbook_id} has no earlier version {wanted} to roll back to"
            f" (versions: {', '.join(str(p.version) for p in versions)})."
        )
    text, found = _VERSION_LINE.subn(f"version: {active.version + 1}", earlier.source_text, count=1)
    if not found or not earlier.source_file or earlier.source_file.startswith("("):
        raise Conflict(f"{playbook_id} version {wanted} has no file to republish.")
    async with database.transaction() as session:
        published = await record_publication(
            session, live=live, files={earlier.source_file: text}, actor=actor.name, seen=seen
        )
        await audit.record(
            session,
            actor=actor,
            action="playbooks.rollback",
            target=f"playbook:{playbook_id}",
            detail={
                "from_version": active.version,
                "to_content_of": wanted,
                "as_version": active.version + 1,
                "publication_id": published.publication_id,
            },
        )
    live.serve(published.library, published.publication_id)
    return published


async def record_publication(
    session: AsyncSession,
    *,
    live: LiveLibrary,
    files: dict[str, str],
    actor: str,
    seen: LiveLibrary | None = None,
) -> Published:
    """Validate, then record a publication and its event; raises PlaybooksRejected, nothing written.

    Validation runs against the database's latest publication, not this replica's copy, which
    may lag by one event: a version check against a stale set could accept a regress. `seen` is
    the library the caller's files were made against (read before the lock): files that were
    valid on it but not on a newer publication lost a race, a `Conflict` rather than the caller's
    own mistake.
    """
    await lock_publications(session)
    latest = await latest_library(session, live)
    try:
        parsed, merged = checked_on(latest.library, files)
    except PlaybooksRejected:
        if _overtaken(seen, latest, files):
            raise Conflict(OVERTAKEN) from None
        raise
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


#: The refusal of a publication that another one overtook between reading the library and the lock.
OVERTAKEN = "The library changed while this was published; read it again."


async def latest_library(session: AsyncSession, live: LiveLibrary) -> LiveLibrary:
    """The database's latest publication: this replica's copy when it serves that one (the usual
    case, one query), else every publication replayed."""
    latest = await latest_publication_id(session)
    if latest == live.publication_id:
        return LiveLibrary(library=live.library, publication_id=latest)
    return await rebuild(session)


def checked_on(base: Library, files: dict[str, str]) -> tuple[Library, Library]:
    """The files' playbooks and the library they would make on `base`: parsing and the version
    check are what can reject them (PlaybooksRejected)."""
    try:
        parsed = parse_playbooks(sorted(files.items()))
        merged = base.with_published(parsed)
    except PlaybookValidationError as exc:
        raise PlaybooksRejected(exc.problems) from exc
    # Every active category of the published taxonomy keeps a default playbook (#20 §3): a new
    # version of a default that no longer is one is refused like the taxonomy change would be.
    lost = [c for c in taxonomy.current().active if merged.default_for(c) is None]
    if lost:
        raise PlaybooksRejected([
            PlaybookProblem("(library)", None, "when.category",
                            f"no default playbook left for category {c!r}: keep one whose only "
                            "conditions are category (and optionally sentiment)")
            for c in lost
        ])  # fmt: skip
    return parsed, merged


def _overtaken(seen: LiveLibrary | None, latest: LiveLibrary, files: dict[str, str]) -> bool:
    """Whether files refused on `latest` were valid on the `seen` library a newer one replaced."""
    if seen is None or seen.publication_id == latest.publication_id:
        return False
    try:
        checked_on(seen.library, files)
    except PlaybooksRejected:
        return False
    return True


async def validate(parts: PublishParts, *, files: dict[str, str]) -> list[Playbook]:
    """What publishing `files` now would add, or PlaybooksRejected with every problem by file,
    line and field; nothing is written (the console's check before it publishes)."""
    async with parts.database.session() as session:
        latest = await latest_library(session, parts.live)
    parsed, _ = checked_on(latest.library, files)
    return list(parsed.playbooks)


async def lock_publications(session: AsyncSession) -> None:
    """Serialise publishes across replicas for the rest of this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PUBLISH_LOCK_KEY})
    else:
        # SQLite: a write (even of no rows) takes the database's write lock now, before the
        # read below, so another process cannot publish between our read and our insert.
        await session.execute(update(Publication).where(Publication.id == -1).values(published_by="x"))
