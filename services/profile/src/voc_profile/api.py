"""REST API of the profile service (admin token)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from voc_platform.db import Database
from voc_platform.http import Problem, SessionDep, admin_guard, create_app, install_health_routes
from voc_profile import service
from voc_profile.identity import InvalidIdentifier
from voc_profile.models import Customer
from voc_profile.schemas import CustomersIn, UpsertResult
from voc_profile.settings import Settings


def build_app(settings: Settings, database: Database) -> FastAPI:
    app = create_app(title="Frontline VoC — profile", service="voc-profile")
    install_health_routes(app)
    require_admin = admin_guard(lambda: settings.admin_token)

    app.state.database = database

    @app.post("/v1/customers", dependencies=[Depends(require_admin)], response_model=list[UpsertResult])
    async def upsert(body: CustomersIn) -> list[UpsertResult]:
        results: list[UpsertResult] = []
        for index, item in enumerate(body.customers):
            try:
                async with database.transaction() as session:
                    customer_id, created = await service.upsert_customer(
                        session, data=item.model_dump(exclude_none=True), region=settings.default_region
                    )
                results.append(UpsertResult(index=index, customer_id=customer_id, created=created))
            except (InvalidIdentifier, ValueError) as exc:
                results.append(UpsertResult(index=index, customer_id=None, created=False, error=str(exc)))
        return results

    @app.get("/v1/customers/{customer_id}", dependencies=[Depends(require_admin)])
    async def read(customer_id: str, session: SessionDep) -> dict[str, Any]:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise Problem(404, f"No customer '{customer_id}'.")
        return {
            "id": customer.id,
            "name": customer.name,
            "tier": customer.tier,
            "lifetime_value": customer.lifetime_value,
            "preferred_language": customer.preferred_language,
            "home_store_id": customer.home_store_id,
            "contact_consent": customer.contact_consent,
        }

    @app.get("/v1/customers/{customer_id}/context", dependencies=[Depends(require_admin)])
    async def context(customer_id: str, session: SessionDep) -> dict[str, Any]:
        ctx = await service.customer_context(session, customer_id=customer_id, settings=settings)
        if ctx.customer is None:
            raise Problem(404, f"No customer '{customer_id}'.")
        return ctx.to_dict()

    return app
