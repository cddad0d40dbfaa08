"""REST API of the actions service: playbooks (admin writes) and plan lookup."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from voc_actions import service
from voc_actions.playbooks import PlaybookValidationError
from voc_actions.settings import Settings
from voc_platform.db import Database
from voc_platform.http import Problem, admin_guard, create_app, install_health_routes


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: Annotated[dict[str, Annotated[str, Field(max_length=60_000)]], Field(min_length=1, max_length=200)]


class LookupFeedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str
    severity: str | None = None
    sentiment: str | None = None
    channel: str | None = None
    touchpoint: str | None = None
    store_id: str | None = None
    language: str | None = None


class LookupCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str | None = None
    signals: dict[str, bool | int] = {}
    name: str | None = None
    last_visit: str | None = None
    repeat_count: int | None = None


class LookupStore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str | None = None
    region: str | None = None
    name: str | None = None


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feedback: LookupFeedback
    customer: LookupCustomer = LookupCustomer()
    store: LookupStore = LookupStore()
    language: str | None = None
    local_time: datetime | None = None


def build_app(settings: Settings, database: Database, live: service.LiveLibrary) -> FastAPI:
    app = create_app(title="Frontline VoC — actions", service="voc-actions")
    install_health_routes(app, extra_ready=lambda: len(live.library) > 0)
    require_admin = admin_guard(lambda: settings.admin_token)

    @app.get("/v1/playbooks")
    async def list_playbooks() -> dict[str, Any]:
        return {
            "publication_id": live.publication_id,
            "playbooks": [p.to_dict() for p in live.library.playbooks],
        }

    @app.get("/v1/playbooks/{playbook_id}")
    async def get_playbook(playbook_id: str) -> dict[str, Any]:
        current = live.library.get(playbook_id)
        if current is None:
            raise Problem(404, f"No playbook '{playbook_id}'.")
        return {**current.to_dict(), "versions": [p.to_dict() for p in live.library.versions(playbook_id)]}

    @app.put("/v1/playbooks", dependencies=[Depends(require_admin)])
    async def publish(body: PublishIn) -> dict[str, Any]:
        try:
            async with database.transaction() as session:
                merged, pub_id = await service.publish(session, live=live, files=body.files, actor="admin")
        except PlaybookValidationError as exc:
            raise Problem(
                422,
                str(exc).splitlines()[0],
                errors=[
                    {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                    for p in exc.problems
                ],
            ) from exc
        live.library, live.publication_id = merged, pub_id
        return {
            "publication_id": pub_id,
            "published": sorted({n for n in body.files}),
            "playbooks": len(merged),
        }

    @app.post("/v1/plans:lookup")
    async def lookup(body: LookupIn) -> dict[str, Any]:
        fb = body.feedback.model_dump()
        plan = service.lookup(
            live.library,
            feedback=fb,
            customer=body.customer.model_dump(),
            store=body.store.model_dump(),
            language=body.language or fb.get("language") or "ko",
            local_time=body.local_time,
        )
        return plan.to_dict()

    return app
