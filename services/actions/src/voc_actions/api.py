"""REST API of the actions service: playbooks (admin writes) and plan lookup."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)

from voc_actions import service
from voc_actions.playbooks import PlaybookValidationError
from voc_actions.settings import Settings
from voc_platform.db import Database
from voc_platform.http import Problem, admin_guard, create_app, install_health_routes
from voc_platform.taxonomy import CATEGORIES, CHANNELS, SENTIMENTS, SEVERITIES

#: A playbook file name as the CLI sends it: a bare ``*.yaml``/``*.yml`` name, no directories.
FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.ya?ml$"
#: Profile signals a lookup may carry (booleans; ``repeat_count`` is the count behind repeat_issue).
BOOLEAN_SIGNALS = (
    "repeat_issue", "score_swing", "vip", "churn_risk", "low_satisfaction", "chronic_complainer",
)  # fmt: skip

FileName = Annotated[str, StringConstraints(pattern=FILE_NAME_PATTERN)]
Word = Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Category = Literal[CATEGORIES]  # type: ignore[valid-type]
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
Sentiment = Literal[SENTIMENTS]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}([-_][A-Za-z0-9]{2,8})?$")]


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: Annotated[
        dict[FileName, Annotated[str, Field(max_length=60_000)]], Field(min_length=1, max_length=200)
    ]


class LookupFeedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category
    severity: Severity | None = None
    sentiment: Sentiment | None = None
    channel: Channel | None = None
    touchpoint: Word | None = None
    store_id: Word | None = None
    language: Language | None = None


class LookupCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Word | None = None
    signals: dict[str, StrictBool | Annotated[StrictInt, Field(ge=0)]] = {}
    name: ShortText | None = None
    last_visit: ShortText | None = None
    repeat_count: Annotated[int, Field(ge=0, le=10_000)] | None = None

    @field_validator("signals")
    @classmethod
    def _known_signals(cls, value: dict[str, bool | int]) -> dict[str, bool | int]:
        for key, flag in value.items():
            if key == "repeat_count":
                if isinstance(flag, bool):
                    raise ValueError("signals.repeat_count is a count, not true/false")
            elif key not in BOOLEAN_SIGNALS:
                raise ValueError(f"unknown signal {key!r}; known: repeat_count, {', '.join(BOOLEAN_SIGNALS)}")
            elif not isinstance(flag, bool):
                raise ValueError(f"signals.{key} must be true or false")
        return value


class LookupStore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Word | None = None
    region: Word | None = None
    name: ShortText | None = None


class LookupIn(BaseModel):
    """The DESIGN §5 body, plus optional store facts, staff language and the store's local time."""

    model_config = ConfigDict(extra="forbid")

    feedback: LookupFeedback
    customer: LookupCustomer = LookupCustomer()
    store: LookupStore = LookupStore()
    language: Language | None = None
    # The store's wall clock, for time.hours / time.weekdays conditions; an offset is ignored.
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
                published = await service.publish(session, live=live, files=body.files, actor="admin")
        except PlaybookValidationError as exc:
            raise Problem(
                422,
                str(exc).splitlines()[0],
                errors=[
                    {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                    for p in exc.problems
                ],
            ) from exc
        live.library, live.publication_id = published.library, published.publication_id
        return {
            "publication_id": published.publication_id,
            "published": [
                {"id": p.id, "version": p.version, "file": p.source_file} for p in published.playbooks
            ],
            "playbooks": len(published.library),
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
