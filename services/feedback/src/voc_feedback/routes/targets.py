"""Targets (#20 §5): `PUT /v1/targets` and `DELETE /v1/targets` (targets.manage: cx_admin any
store or area, an area manager their area and its stores), `GET /v1/targets` (analytics.read:
the targets that apply to the reader's stores). Every change is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from voc_feedback import targets
from voc_feedback.deps import AuditDep, IdQuery
from voc_feedback.schemas import TargetIn
from voc_platform.errors import FieldError, Invalid
from voc_platform.http import DatabaseDep, SessionDep, require
from voc_platform.identity import Caller, Permission

router = APIRouter(tags=["targets"], responses={401: {}, 403: {}, 422: {}})
TargetAdmin = Annotated[Caller, Depends(require(Permission.TARGETS))]
TargetReader = Annotated[Caller, Depends(require(Permission.ANALYTICS))]


def place_of(caller: Caller, *, store_id: str | None, area_id: str | None, part: str) -> targets.Place:
    """The one store or area named (422 for none or both), within the caller's (403 naming it)."""
    if bool(store_id) == bool(area_id):
        raise Invalid(
            "Name either a store or an area.",
            errors=[FieldError(f"{part}.store_id", "store_id or area_id, not both")],
        )
    if store_id:
        caller.check_store(store_id, field=f"{part}.store_id")
        return targets.Place("store", store_id)
    assert area_id is not None
    caller.check_area(area_id, field=f"{part}.area_id")
    return targets.Place("area", area_id)


@router.put("/v1/targets")
async def put_target(
    body: TargetIn, caller: TargetAdmin, database: DatabaseDep, audit: AuditDep
) -> dict[str, Any]:
    """Set one metric's target of a store or an area (replacing the one it had)."""
    place = place_of(caller, store_id=body.store_id, area_id=body.area_id, part="body")
    async with database.transaction() as session:
        row = await targets.put_target(
            session, place=place, metric=body.metric, value=body.value, actor=caller.actor.name
        )
        await audit.record(
            session,
            actor=caller.actor,
            action="target.put",
            target=f"target:{place.kind}:{place.id}:{body.metric}",
            detail={"value": body.value},
        )
        return targets.target_out(row)


@router.delete("/v1/targets", status_code=204, responses={404: {}})
async def delete_target(
    caller: TargetAdmin,
    database: DatabaseDep,
    audit: AuditDep,
    metric: targets.Metric,
    store_id: IdQuery = None,
    area_id: IdQuery = None,
) -> Response:
    """Remove one metric's target of a store or an area (a store falls back to its area's)."""
    place = place_of(caller, store_id=store_id, area_id=area_id, part="query")
    async with database.transaction() as session:
        await targets.delete_target(session, place=place, metric=metric)
        await audit.record(
            session,
            actor=caller.actor,
            action="target.delete",
            target=f"target:{place.kind}:{place.id}:{metric}",
        )
    return Response(status_code=204)


@router.get("/v1/targets")
async def list_targets(
    caller: TargetReader, session: SessionDep, store_id: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    """The targets of the reader's stores and of their areas (every target for cx_admin)."""
    caller.check_store(store_id)
    scope = (store_id,) if store_id else caller.scope
    return {"targets": [targets.target_out(t) for t in await targets.visible_targets(session, scope=scope)]}
