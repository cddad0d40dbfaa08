"""The classifier model registry (classifier.models: cx_admin, the admin token; audited): the
versions and what this replica serves, a candidate's upload (a bundle zip, up to 16 MiB),
promotion through the gate and rollback (`model_registry`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from voc_feedback import model_registry as registry
from voc_feedback.classification.gate import TOLERANCE
from voc_feedback.deps import AuditDep, ClassifierDep
from voc_feedback.models import ClassifierModel
from voc_platform.errors import Unsupported
from voc_platform.http import DatabaseDep, SessionDep, require, upload_body
from voc_platform.identity import Caller, Permission
from voc_platform.records import fields_of

BASE = "/v1/admin/classifier/models"
# The upload streams its body, enforces its own, larger limit (MAX_BUNDLE_BYTES) and is binary
# (stored as bytes: the NUL guard for text does not apply).
PATHS = frozenset({BASE})
router = APIRouter(tags=["classifier"], responses={401: {}, 403: {}})
ModelAdmin = Annotated[Caller, Depends(require(Permission.CLASSIFIER_MODELS))]
BUNDLE_TYPES = ("application/zip", "application/octet-stream")


# What a model's answer holds: its row's own fields, never the bundle.
MODEL_FIELDS = ("version", "status", "created_at", "created_by", "promoted_at", "training_rows", "metrics")


def _out(row: ClassifierModel) -> dict[str, Any]:
    return fields_of(row, MODEL_FIELDS)


@router.get(BASE)
async def list_models(caller: ModelAdmin, session: SessionDep, live: ClassifierDep) -> dict[str, Any]:
    """Every version (newest first), the active one (null: the built-in model) and what this
    replica serves right now."""
    rows = await registry.list_models(session)
    active = next((r.version for r in rows if r.status == "active"), None)
    return {
        "served_version": live.version,
        "active_version": active,
        "builtin_version": registry.builtin_version(),
        "tolerance": TOLERANCE,
        "models": [_out(r) for r in rows],
    }


@router.post(
    BASE,
    status_code=201,
    responses={409: {}, 413: {}, 415: {}, 422: {}},
    openapi_extra=upload_body(
        "application/zip", description="a model bundle (`voc classifier train` writes one)"
    ),
)
async def upload_model(
    request: Request, caller: ModelAdmin, database: DatabaseDep, audit: AuditDep
) -> dict[str, Any]:
    """A candidate: the bundle (`model.npz`, `model.json` and the gate's `gate.json`, zipped)
    as the body. Checked before anything is stored (422 when it cannot be served)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in BUNDLE_TYPES:
        raise Unsupported(f"Send the bundle as {BUNDLE_TYPES[0]}.")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > registry.MAX_BUNDLE_BYTES:
        raise registry.BundleTooLarge(
            f"The bundle exceeds {registry.MAX_BUNDLE_BYTES} bytes; nothing was stored."
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > registry.MAX_BUNDLE_BYTES:
            raise registry.BundleTooLarge(
                f"The bundle exceeds {registry.MAX_BUNDLE_BYTES} bytes; nothing was stored."
            )
        chunks.append(chunk)
    row = await registry.upload(database=database, blob=b"".join(chunks), actor=caller.actor, audit=audit)
    return _out(row)


@router.get(BASE + "/{version}", responses={404: {}})
async def get_model(version: str, caller: ModelAdmin, session: SessionDep) -> dict[str, Any]:
    return _out(await registry.get_model(session, version=version))


@router.get(
    BASE + "/{version}/bundle",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}, 404: {}},
)
async def get_bundle(version: str, caller: ModelAdmin, session: SessionDep) -> Response:
    """The version's bundle as uploaded (`voc classifier train` scores the active one with it)."""
    row = await registry.get_model(session, version=version, with_bundle=True)
    return Response(row.bundle, media_type="application/zip")


@router.post(BASE + "/{version}:promote", responses={404: {}, 409: {}})
async def promote_model(
    version: str, caller: ModelAdmin, database: DatabaseDep, live: ClassifierDep, audit: AuditDep
) -> dict[str, Any]:
    """Make a candidate active if the gate passes (409 problem+json naming each regressing
    metric otherwise; nothing changes). This replica serves it at once, every other within the
    promotion event (or `VOC_FEEDBACK_CLASSIFIER_POLL_SECONDS`)."""
    row, previous = await registry.promote(
        database=database, live=live, version=version, actor=caller.actor, audit=audit
    )
    return {**_out(row), "previous_version": previous}


@router.post(BASE + "/{version}:rollback", responses={404: {}, 409: {}})
async def rollback_model(
    version: str, caller: ModelAdmin, database: DatabaseDep, live: ClassifierDep, audit: AuditDep
) -> dict[str, Any]:
    """Make an earlier active version, or the built-in model (by its version), active again
    (no gate: it was active before)."""
    active, previous = await registry.rollback(
        database=database, live=live, version=version, actor=caller.actor, audit=audit
    )
    return {"active_version": active, "previous_version": previous}
