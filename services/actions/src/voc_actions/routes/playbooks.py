"""Playbooks: the live library and each playbook's versions (read by anyone on the network), and
publishing a set of files (playbooks.publish: cx_admin, the admin token; audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from voc_actions import publishing
from voc_actions.deps import AuditDep, LiveDep
from voc_actions.schemas import PublishIn
from voc_platform.errors import NotFound
from voc_platform.http import DatabaseDep, require
from voc_platform.identity import Caller, Permission

router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"])


@router.get("")
async def list_playbooks(live: LiveDep) -> dict[str, Any]:
    return {
        "publication_id": live.publication_id,
        "playbooks": [p.to_dict() for p in live.library.playbooks],
    }


@router.get("/{playbook_id}")
async def get_playbook(playbook_id: str, live: LiveDep) -> dict[str, Any]:
    current = live.library.get(playbook_id)
    if current is None:
        raise NotFound(f"No playbook '{playbook_id}'.")
    return {**current.to_dict(), "versions": [p.to_dict() for p in live.library.versions(playbook_id)]}


@router.put("", responses={401: {}, 403: {}, 422: {}})
async def publish(
    body: PublishIn,
    caller: Annotated[Caller, Depends(require(Permission.PLAYBOOKS))],
    database: DatabaseDep,
    live: LiveDep,
    audit: AuditDep,
) -> dict[str, Any]:
    published = await publishing.publish(
        database=database, live=live, files=body.files, actor=caller.actor, audit=audit
    )
    return {
        "publication_id": published.publication_id,
        "published": [{"id": p.id, "version": p.version, "file": p.source_file} for p in published.playbooks],
        "playbooks": len(published.library),
    }
