"""Outbound webhooks (cx_admin or the admin token): the event types to subscribe to, register an
endpoint, list, read, delete, rotate its secret, enable it again once disabled, its recent
delivery attempts, and a test message. Changes are audited with the caller as actor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from voc_notify.deps import AuditDep, SecretBoxDep, SettingsDep, WebhookSenderDep
from voc_notify.schemas import WebhookIn, WebhookRecoverIn, WebhookRotateIn
from voc_notify.webhooks import catalog, registry
from voc_platform.http import CallerDep, DatabaseDep, SessionDep, require_admin

router = APIRouter(prefix="/v1/admin/webhooks", tags=["webhooks"], dependencies=[Depends(require_admin)])


def recorder_of(caller: CallerDep, audit: AuditDep) -> registry.Recorder:
    return registry.Recorder(audit, caller.actor)


RecorderDep = Annotated[registry.Recorder, Depends(recorder_of)]


@router.post("", status_code=201)
async def create_webhook(
    body: WebhookIn, database: DatabaseDep, sender: WebhookSenderDep, box: SecretBoxDep, recorder: RecorderDep
) -> dict[str, Any]:
    """Register an endpoint for `events` (types, or ["*"]); the answer's `secret` (whsec_…) is
    shown this once: keep it to verify signatures."""
    return await registry.create_endpoint(
        database, spec=body, targets=sender.targets, box=box, recorder=recorder
    )


@router.get("")
async def list_webhooks(session: SessionDep) -> dict[str, Any]:
    return {"webhooks": await registry.list_endpoints(session)}


# Before `/{endpoint_id}`: the first matching route answers.
@router.get("/event-types")
async def webhook_event_types() -> dict[str, list[str]]:
    """The types an endpoint may subscribe to (`events`; `["*"]` is every one of them, types
    added later included): what the console offers to choose from."""
    return {"event_types": list(catalog.EVENT_TYPES)}


@router.get("/{endpoint_id}", responses={404: {}})
async def get_webhook(endpoint_id: str, session: SessionDep) -> dict[str, Any]:
    """The endpoint (`status`: active, or disabled with `disabled_reason`) and its deliveries by status."""
    return await registry.get_endpoint(session, endpoint_id=endpoint_id)


@router.delete("/{endpoint_id}", status_code=204, responses={404: {}})
async def delete_webhook(endpoint_id: str, database: DatabaseDep, recorder: RecorderDep) -> Response:
    await registry.delete_endpoint(database, endpoint_id=endpoint_id, recorder=recorder)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", responses={404: {}, 409: {}})
async def rotate_webhook_secret(
    endpoint_id: str,
    database: DatabaseDep,
    box: SecretBoxDep,
    recorder: RecorderDep,
    body: WebhookRotateIn | None = None,
) -> dict[str, Any]:
    """A new secret, in force at once and shown this once; the replaced one still signs beside it
    (a second signature) until `previous_secret_until`, 24 h by default (`keep_previous_seconds`,
    0 for a secret that leaked). 409 when another rotation of the endpoint won the race: the
    secret in force is the one that call was answered."""
    keep = (body or WebhookRotateIn()).keep_previous_seconds
    return await registry.rotate_secret(
        database, endpoint_id=endpoint_id, box=box, recorder=recorder, keep_previous_seconds=keep
    )


@router.post("/{endpoint_id}/enable", responses={404: {}})
async def enable_webhook(endpoint_id: str, database: DatabaseDep, recorder: RecorderDep) -> dict[str, Any]:
    """A disabled endpoint (410, or failing for `VOC_WEBHOOK_DISABLE_AFTER_SECONDS`) active again
    with its secret and events; check the fixed receiver with `/test` first. Idempotent."""
    return await registry.enable_endpoint(database, endpoint_id=endpoint_id, recorder=recorder)


@router.get("/{endpoint_id}/deliveries", responses={404: {}})
async def webhook_deliveries(
    endpoint_id: str, session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    """Recent attempts, newest first: status code, latency, error, when."""
    return await registry.recent_attempts(session, endpoint_id=endpoint_id, limit=limit)


@router.post("/{endpoint_id}/recover", responses={404: {}, 409: {}})
async def recover_webhook(
    endpoint_id: str, body: WebhookRecoverIn, database: DatabaseDep, recorder: RecorderDep
) -> dict[str, Any]:
    """Send once more every delivery that failed, of events since `since` (those it missed while
    disabled too): {id, since, requeued}. 409 while the endpoint is disabled: enable it first."""
    return await registry.recover_endpoint(
        database, endpoint_id=endpoint_id, since=body.since.timestamp(), recorder=recorder
    )


@router.post("/{endpoint_id}/test", responses={404: {}, 409: {}})
async def test_webhook(
    endpoint_id: str,
    database: DatabaseDep,
    sender: WebhookSenderDep,
    box: SecretBoxDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Send a signed `webhook.test` message now and answer how the receiver took it."""
    return await registry.send_test(
        database, endpoint_id=endpoint_id, sender=sender, box=box, app_url=str(settings.public_url)
    )
