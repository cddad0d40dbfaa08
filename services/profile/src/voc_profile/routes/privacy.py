"""Subject access export and erasure (customers.admin: cx_admin, the admin token)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from voc_platform.http import DatabaseDep
from voc_profile import privacy
from voc_profile.deps import CustomerAdmin

router = APIRouter(responses={401: {}, 403: {}, 404: {}})


@router.get("/v1/customers/{customer_id}/export")
async def export(customer_id: str, database: DatabaseDep, caller: CustomerAdmin) -> Response:
    """Subject access: everything held about the person, as one JSON document."""
    body = await privacy.subject_access(database, customer_id=customer_id, actor=caller.actor)
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'},
    )


@router.delete("/v1/customers/{customer_id}", status_code=200, responses={410: {}})
async def erase(customer_id: str, database: DatabaseDep, caller: CustomerAdmin) -> dict[str, Any]:
    """Erasure: personal data removed here; `customer.erased` redacts the copies elsewhere."""
    async with database.transaction() as session:
        erased = await privacy.erase_customer(session, customer_id=customer_id, actor=caller.actor)
    return {"erased": erased}
