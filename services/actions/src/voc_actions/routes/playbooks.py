"""Playbooks: the live library and each playbook's versions (playbooks.read: every role and the
admin token; 401 without a valid token, since the ingress routes these on the public host), and
publishing a set of files or rolling one playbook back (playbooks.publish: cx_admin, the admin
token; audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from voc_actions import publishing
from voc_actions.deps import LiveDep, PublishPartsDep
from voc_actions.playbooks import Playbook
from voc_actions.schemas import PublishIn, RollbackIn
from voc_platform.errors import NotFound
from voc_platform.http import require
from voc_platform.identity import Caller, Permission

router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"])
#: A whole library may go in one call (`voc_platform.http.BULK_BODY_BYTES`).
BULK_PATHS = frozenset({"/v1/playbooks", "/v1/playbooks:validate"})
PlaybookReader = Annotated[Caller, Depends(require(Permission.PLAYBOOKS_READ))]
PlaybookPublisher = Annotated[Caller, Depends(require(Permission.PLAYBOOKS))]


@router.get("", responses={401: {}})
async def list_playbooks(caller: PlaybookReader, live: LiveDep) -> dict[str, Any]:
    return {
        "publication_id": live.publication_id,
        "playbooks": [p.to_dict() for p in live.library.playbooks],
    }


@router.get("/{playbook_id}", responses={401: {}, 404: {}})
async def get_playbook(playbook_id: str, caller: PlaybookReader, live: LiveDep) -> dict[str, Any]:
    current = live.library.get(playbook_id)
    if current is None:
        raise NotFound(f"No playbook '{playbook_id}'.")
    return {**current.to_dict(), "versions": [p.to_dict() for p in live.library.versions(playbook_id)]}


def _published_json(published: publishing.Published) -> dict[str, Any]:
    return {
        "publication_id": published.publication_id,
        "published": [_named(p) for p in published.playbooks],
        "playbooks": len(published.library),
    }


def _named(playbook: Playbook) -> dict[str, Any]:
    """A playbook a publication (or a validation) names: its id, version and file."""
    return {"id": playbook.id, "version": playbook.version, "file": playbook.source_file}


@router.post(":validate", responses={401: {}, 403: {}, 422: {}})
async def validate(body: PublishIn, caller: PlaybookPublisher, parts: PublishPartsDep) -> dict[str, Any]:
    """Check files as `PUT /v1/playbooks` would, without publishing: 200 with what they would
    publish, or 422 with every problem by file, line and field."""
    playbooks = await publishing.validate(parts, files=body.files)
    return {"valid": True, "playbooks": [_named(p) for p in playbooks]}


@router.post("/{playbook_id}/rollback", responses={401: {}, 403: {}, 404: {}, 409: {}, 422: {}})
async def roll_back(
    playbook_id: str, caller: PlaybookPublisher, parts: PublishPartsDep, body: RollbackIn | None = None
) -> dict[str, Any]:
    """Make the version before the active one (or `to_version`) active again, republished as the
    next version; 409 when there is no earlier version, or another publication overtook it."""
    published = await publishing.roll_back(
        parts, playbook_id=playbook_id, to_version=(body or RollbackIn()).to_version, actor=caller.actor
    )
    return _published_json(published)


@router.put("", responses={401: {}, 403: {}, 409: {}, 422: {}})
async def publish(body: PublishIn, caller: PlaybookPublisher, parts: PublishPartsDep) -> dict[str, Any]:
    """Publish `files` as the next publication: 422 with every problem by file, line and field;
    409 when another publication overtook this one (the files were valid before it)."""
    published = await publishing.publish(parts, files=body.files, actor=caller.actor)
    return _published_json(published)
