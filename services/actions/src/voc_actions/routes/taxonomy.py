"""Taxonomy (#20 §3): the published categories and departments (read by anyone on the network,
like the playbooks), and publishing, validating and rolling back versions (taxonomy.manage:
cx_admin, the admin token; audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from voc_actions import taxonomy as versions
from voc_actions.deps import PublishPartsDep
from voc_actions.schemas import RollbackIn, TaxonomyIn
from voc_platform import taxonomy
from voc_platform.http import DatabaseDep, require
from voc_platform.identity import Caller, Permission

router = APIRouter(prefix="/v1/taxonomy", tags=["taxonomy"])
#: A version with its new categories' playbooks (`voc_platform.http.BULK_BODY_BYTES`).
BULK_PATHS = frozenset({"/v1/taxonomy", "/v1/taxonomy:validate"})
Manager = Annotated[Caller, Depends(require(Permission.TAXONOMY))]


def _json(t: taxonomy.Taxonomy) -> dict[str, Any]:
    return {
        "version": t.version,
        "categories": [c.to_dict() for c in t.categories],
        "departments": [d.to_dict() for d in t.departments],
    }


def _document(body: TaxonomyIn) -> Any:
    return body.taxonomy if body.taxonomy is not None else taxonomy.parse_document(body.yaml or "")


@router.get("")
async def get_taxonomy() -> dict[str, Any]:
    """The published version: every category (retired ones flagged) and department."""
    return _json(taxonomy.current())


@router.get("/versions", responses={401: {}, 403: {}})
async def list_versions(caller: Manager, database: DatabaseDep) -> dict[str, Any]:
    return {"versions": await versions.versions(database)}


@router.post(":validate", responses={401: {}, 403: {}, 422: {}})
async def validate(body: TaxonomyIn, caller: Manager, parts: PublishPartsDep) -> dict[str, Any]:
    """Check a version as `PUT /v1/taxonomy` would, writing nothing: 200 with what it would
    publish, or 422 naming every problem (field `categories.<id>...`)."""
    checked = await versions.validate(parts, document=_document(body), files=body.playbooks)
    return {"valid": True, "retired": list(checked.retired), **_json(checked.taxonomy)}


@router.put("", responses={401: {}, 403: {}, 422: {}})
async def publish(body: TaxonomyIn, caller: Manager, parts: PublishPartsDep) -> dict[str, Any]:
    """Publish the next version (a category left out is retired, not deleted); every service
    serves it at once."""
    checked = await versions.publish(
        parts, document=_document(body), files=body.playbooks, actor=caller.actor
    )
    return {"retired": list(checked.retired), **_json(checked.taxonomy)}


@router.post("/rollback", responses={401: {}, 403: {}, 409: {}, 422: {}})
async def roll_back(
    caller: Manager, parts: PublishPartsDep, body: RollbackIn | None = None
) -> dict[str, Any]:
    """Republish the version before the newest (or `to_version`) as the next version; 409 when
    there is none, 422 when it no longer fits the playbooks."""
    checked = await versions.roll_back(
        parts, to_version=(body or RollbackIn()).to_version, actor=caller.actor
    )
    return {"retired": list(checked.retired), **_json(checked.taxonomy)}
