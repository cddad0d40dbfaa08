"""The CX admin's calls (cx_admin or the admin token): store-app API keys (create, list, rotate,
revoke; api_keys.manage) and the store -> area directory (stores.manage). Every change is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from voc_feedback import keys
from voc_feedback import stores as directory
from voc_feedback.deps import AuditDep
from voc_feedback.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, ApiKeyRotate, StoreIn, StoreOut
from voc_platform.http import DatabaseDep, SessionDep, require
from voc_platform.identity import Caller, Permission

router = APIRouter(responses={401: {}, 403: {}})
KeyAdmin = Annotated[Caller, Depends(require(Permission.API_KEYS))]
StoreAdmin = Annotated[Caller, Depends(require(Permission.STORES))]
#: A chain's whole store directory in one call (`voc_platform.http.BULK_BODY_BYTES`).
BULK_PATHS = frozenset({"/v1/admin/stores"})


@router.post("/v1/admin/api-keys", status_code=201, response_model=ApiKeyCreated)
async def create_key(
    body: ApiKeyIn, caller: KeyAdmin, database: DatabaseDep, audit: AuditDep
) -> ApiKeyCreated:
    async with database.transaction() as session:
        row, key = await keys.create_api_key(session, name=body.name, store_ids=body.store_ids)
        await audit.record(
            session,
            actor=caller.actor,
            action="api_key.create",
            target=f"api_key:{row.id}",
            detail={"name": row.name, "store_ids": list(row.store_ids)},
        )
    return ApiKeyCreated.created(row, key)


@router.get("/v1/admin/api-keys", response_model=list[ApiKeyOut])
async def list_keys(caller: KeyAdmin, session: SessionDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(r) for r in await keys.list_api_keys(session)]


@router.post(
    "/v1/admin/api-keys/{key_id}/rotate",
    status_code=201,
    response_model=ApiKeyCreated,
    responses={404: {}, 409: {}, 422: {}},
)
async def rotate_key(
    key_id: str, caller: KeyAdmin, database: DatabaseDep, audit: AuditDep, body: ApiKeyRotate | None = None
) -> ApiKeyCreated:
    grace = (body or ApiKeyRotate()).grace_seconds
    async with database.transaction() as session:
        row, key = await keys.rotate_api_key(session, key_id=key_id, grace_seconds=grace)
        await audit.record(
            session,
            actor=caller.actor,
            action="api_key.rotate",
            target=f"api_key:{key_id}",
            detail={"new_key_id": row.id, "grace_seconds": grace},
        )
    return ApiKeyCreated.created(row, key)


@router.delete("/v1/admin/api-keys/{key_id}", status_code=204, responses={404: {}})
async def revoke_key(key_id: str, caller: KeyAdmin, database: DatabaseDep, audit: AuditDep) -> Response:
    async with database.transaction() as session:
        await keys.revoke_api_key(session, key_id=key_id)
        await audit.record(session, actor=caller.actor, action="api_key.revoke", target=f"api_key:{key_id}")
    return Response(status_code=204)


@router.put("/v1/admin/stores", response_model=list[StoreOut], responses={422: {}})
async def put_store_directory(
    stores: Annotated[list[StoreIn], Field(max_length=5000)],
    caller: StoreAdmin,
    database: DatabaseDep,
    audit: AuditDep,
) -> list[StoreOut]:
    async with database.transaction() as session:
        rows = await directory.put_stores(session, stores=stores)
        await audit.record(
            session,
            actor=caller.actor,
            action="stores.put",
            detail={"stores": [s.id for s in stores][:100], "count": len(stores)},
        )
    return [StoreOut.of(r) for r in rows]


@router.get("/v1/admin/stores", response_model=list[StoreOut])
async def list_stores(caller: StoreAdmin, session: SessionDep) -> list[StoreOut]:
    return [StoreOut.of(r) for r in await directory.list_stores(session)]
