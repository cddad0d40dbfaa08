"""The CX admin's calls (admin token): store-app API keys (create, list, rotate, revoke) and the
store -> area directory."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from voc_feedback import keys
from voc_feedback import stores as directory
from voc_feedback.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, ApiKeyRotate, StoreIn, StoreOut
from voc_platform.http import DatabaseDep, SessionDep, require_admin

router = APIRouter(dependencies=[Depends(require_admin)])


@router.post("/v1/admin/api-keys", status_code=201, response_model=ApiKeyCreated)
async def create_key(body: ApiKeyIn, database: DatabaseDep) -> ApiKeyCreated:
    async with database.transaction() as session:
        row, key = await keys.create_api_key(session, name=body.name, store_ids=body.store_ids)
    return ApiKeyCreated.created(row, key)


@router.get("/v1/admin/api-keys", response_model=list[ApiKeyOut])
async def list_keys(session: SessionDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(r) for r in await keys.list_api_keys(session)]


@router.post(
    "/v1/admin/api-keys/{key_id}/rotate",
    status_code=201,
    response_model=ApiKeyCreated,
    responses={404: {}, 409: {}, 422: {}},
)
async def rotate_key(key_id: str, database: DatabaseDep, body: ApiKeyRotate | None = None) -> ApiKeyCreated:
    grace = (body or ApiKeyRotate()).grace_seconds
    async with database.transaction() as session:
        row, key = await keys.rotate_api_key(session, key_id=key_id, grace_seconds=grace)
    return ApiKeyCreated.created(row, key)


@router.delete("/v1/admin/api-keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, database: DatabaseDep) -> Response:
    async with database.transaction() as session:
        await keys.revoke_api_key(session, key_id=key_id)
    return Response(status_code=204)


@router.put("/v1/admin/stores", response_model=list[StoreOut])
async def put_store_directory(stores: list[StoreIn], database: DatabaseDep) -> list[StoreOut]:
    async with database.transaction() as session:
        rows = await directory.put_stores(session, stores=stores)
    return [StoreOut.of(r) for r in rows]


@router.get("/v1/admin/stores", response_model=list[StoreOut])
async def list_stores(session: SessionDep) -> list[StoreOut]:
    return [StoreOut.of(r) for r in await directory.list_stores(session)]
