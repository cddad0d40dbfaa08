"""The live playbook library a replica serves: seeded on first start, rebuilt by replaying the
publications table, replaced whenever any replica publishes (`publishing.py`, `events.py`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_actions.models import Publication
from voc_actions.playbooks import (
    Library,
    PlaybookValidationError,
    default_library,
    parse_playbooks,
    read_directory,
)
from voc_actions.playbooks import library_path as bundled_library_path
from voc_platform.db import Database

log = logging.getLogger(__name__)


@dataclass
class LiveLibrary:
    """The library this replica serves, rebuilt from the publications table."""

    library: Library
    publication_id: int = 0

    def serve(self, library: Library, publication_id: int) -> None:
        """Serve `library` (as of `publication_id`) from now on; a lookup under way keeps its copy."""
        self.library, self.publication_id = library, publication_id


async def latest_publication_id(session: AsyncSession) -> int:
    """The id of the newest publication, 0 when there is none."""
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


async def load(database: Database, live: LiveLibrary) -> None:
    """At start: seed the bundled library if nothing was ever published, then serve every publication."""
    async with database.transaction() as session:
        await seed_bundled_library(session)
    async with database.session() as session:
        rebuilt = await rebuild(session)
    live.serve(rebuilt.library, rebuilt.publication_id)


async def reload_if_newer(database: Database, live: LiveLibrary) -> bool:
    """Rebuild and serve the library when a newer publication than the one served exists."""
    async with database.session() as session:
        if await latest_publication_id(session) <= live.publication_id:
            return False
        rebuilt = await rebuild(session)
    live.serve(rebuilt.library, rebuilt.publication_id)
    log.info(
        "playbook library reloaded at publication %d (%d playbooks)", live.publication_id, len(live.library)
    )
    return True
