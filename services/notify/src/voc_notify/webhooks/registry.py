"""The admin API's domain: register an endpoint (its secret answered once), list, read, delete,
rotate the secret, the recent attempts, and a test message sent at once."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify.models import Staff, Store, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from voc_notify.schemas import WebhookIn
from voc_notify.webhooks.catalog import TEST_TYPE, iso
from voc_notify.webhooks.enqueue import message_id, requeued
from voc_notify.webhooks.formats import ChatDirectory, StoreFacts, render
from voc_notify.webhooks.sender import WebhookSender, signed_headers
from voc_notify.webhooks.signing import KEEP_PREVIOUS_SECONDS, SecretBox, new_secret
from voc_notify.webhooks.targets import UrlRefused, WebhookTargets
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.errors import Conflict, FieldError, Invalid, NotFound
from voc_platform.identity import Actor
from voc_platform.ids import uuid7
from voc_platform.records import fields_of

#: An endpoint as the API shows it (never its secret).
ENDPOINT_FIELDS = (
    "id",
    "url",
    "events",
    "description",
    "format",
    "status",
    "disabled_reason",
    "disabled_at",
    "failing_since",
    "last_success_at",
    "created_at",
    "secret_rotated_at",
)
ATTEMPT_FIELDS = (
    "delivery_id",
    "event_type",
    "attempted_at",
    "status_code",
    "latency_ms",
    "error",
    "response",
)


@dataclass(frozen=True, slots=True)
class Recorder:
    """Who makes a change and the audit log it is recorded in (in the change's transaction)."""

    audit: Audit
    actor: Actor

    async def record(self, session: AsyncSession, action: str, endpoint_id: str, **detail: Any) -> None:
        await self.audit.record(
            session, actor=self.actor, action=action, target=f"webhook:{endpoint_id}", detail=detail or None
        )


async def create_endpoint(
    database: Database,
    *,
    spec: WebhookIn,
    targets: WebhookTargets,
    box: SecretBox,
    now: float | None = None,
    recorder: Recorder | None = None,
) -> dict[str, Any]:
    """A new active endpoint; the answer carries its secret, this once."""
    try:
        await targets.check(spec.url)
    except UrlRefused as exc:
        # The field names itself: its message is the reason alone (it read "body.url: url: …").
        raise Invalid(f"url: {exc}", errors=[FieldError("body.url", str(exc))]) from exc
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=uuid7(),
        url=spec.url,
        events=list(spec.events),
        description=spec.description,
        format=spec.format,
        secret=box.seal(secret),
        status="active",
        created_at=time.time() if now is None else now,
    )
    async with database.transaction() as session:
        session.add(endpoint)
        if recorder is not None:
            await recorder.record(
                session,
                "webhook.create",
                endpoint.id,
                url=_audited(spec.url),
                events=list(spec.events),
                format=spec.format,
            )
    return {**_shown(endpoint, {}), "secret": secret}


def _audited(url: str) -> str:
    """The URL as the audit log keeps it: where, not the path, which for a Slack or Teams
    webhook is the credential that posts to the channel."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") or parts.query else url


async def _endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id!r}.")
    return endpoint


#: Deliveries made pending again per transaction of a recovery.
RECOVER_CHUNK = 2_000

#: Failed deliveries counted per endpoint, at most: a list the board reads every minute stays
#: cheap when a disabled endpoint has kept a week of events.
FAILED_COUNTED = 10_000


async def _failed(session: AsyncSession, endpoint_ids: list[str]) -> dict[str, int]:
    """Per endpoint: how many deliveries failed (what `recover` would send again), counted to
    `FAILED_COUNTED` (an index range each)."""
    counts: dict[str, int] = {}
    for endpoint_id in endpoint_ids:
        failed = (
            select(WebhookDelivery.next_attempt_at)  # a column of the index: counted from it alone
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "failed")
            .limit(FAILED_COUNTED)
            .subquery()
        )
        counts[endpoint_id] = int(await session.scalar(select(func.count()).select_from(failed)) or 0)
    return counts


def _shown(endpoint: WebhookEndpoint, failed: dict[str, int]) -> dict[str, Any]:
    return {**fields_of(endpoint, ENDPOINT_FIELDS), "failed_deliveries": failed.get(endpoint.id, 0)}


async def list_endpoints(session: AsyncSession) -> list[dict[str, Any]]:
    """Every endpoint, with how many of its deliveries failed (to recover; counted to 10,000)."""
    rows = list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))
    failed = await _failed(session, [e.id for e in rows])
    return [_shown(e, failed) for e in rows]


async def get_endpoint(session: AsyncSession, *, endpoint_id: str) -> dict[str, Any]:
    """The endpoint, and its deliveries by status (pending, delivered, failed)."""
    endpoint = await _endpoint(session, endpoint_id)
    counts = await session.execute(
        select(WebhookDelivery.status, func.count())
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .group_by(WebhookDelivery.status)
    )
    by_status = {"pending": 0, "delivered": 0, "failed": 0} | {s: int(n) for s, n in counts.all()}
    return {**_shown(endpoint, await _failed(session, [endpoint_id])), "deliveries": by_status}


async def delete_endpoint(database: Database, *, endpoint_id: str, recorder: Recorder | None = None) -> None:
    """The endpoint, its deliveries and their attempts."""
    async with database.transaction() as session:
        await _endpoint(session, endpoint_id)
        if recorder is not None:
            await recorder.record(session, "webhook.delete", endpoint_id)
        await session.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id))
        await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
        await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


async def enable_endpoint(
    database: Database, *, endpoint_id: str, recorder: Recorder | None = None
) -> dict[str, Any]:
    """A disabled endpoint active again, its secret and subscriptions kept (a receiver that was
    fixed need not be given a new secret); its count of failing time starts afresh. What happens
    from now on reaches it; what failed, and what it missed while disabled, stays failed until
    `recover_endpoint` sends it. Enabling an active endpoint changes nothing."""
    async with database.transaction() as session:
        endpoint = await _endpoint(session, endpoint_id)
        if endpoint.status == "disabled":
            endpoint.status, endpoint.disabled_reason, endpoint.disabled_at = "active", None, None
            endpoint.failing_since = None
            if recorder is not None:
                await recorder.record(session, "webhook.enable", endpoint_id)
        return _shown(endpoint, await _failed(session, [endpoint_id]))


async def recover_endpoint(
    database: Database,
    *,
    endpoint_id: str,
    since: float,
    recorder: Recorder | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Every delivery of the endpoint that failed, of events since `since`, queued for one more
    attempt each (with the same `webhook-id`, so a receiver that took one before knows it), as
    after a receiver was down or the endpoint disabled: what it missed while disabled was kept
    for this (`enqueue.KEEP_WHILE_DISABLED_SECONDS`). An attempt that fails again is retried
    only while its event is younger than `VOC_WEBHOOK_DISABLE_AFTER_SECONDS`. The endpoint must
    be active: Conflict (409) while it is disabled."""
    now = time.time() if now is None else now
    count, first, cursor, complete = 0, True, -math.inf, True
    while True:
        async with database.transaction() as session:
            # Locked (PostgreSQL; SQLite writers are serialized), a chunk at a time: a pass that
            # disables the endpoint waits for the chunk, then fails what it made pending
            # (`dispatch._disable_sync`), and the next chunk stops; the alert path's enqueue
            # (KEY SHARE on the endpoint) never waits longer than one chunk.
            endpoint = await session.get(
                WebhookEndpoint, endpoint_id, with_for_update=True, populate_existing=True
            )
            if endpoint is None:
                raise NotFound(f"No webhook endpoint {endpoint_id!r}.")
            if endpoint.status != "active":
                if first:
                    raise Conflict(
                        f"Webhook endpoint {endpoint_id!r} is disabled: enable it first "
                        f"(POST /v1/admin/webhooks/{endpoint_id}/enable), then recover."
                    )
                complete = False
                break
            if first and recorder is not None:
                await recorder.record(session, "webhook.recover", endpoint_id, since=iso(int(since * 1000)))
            first = False
            # A failed row's `next_attempt_at` is when it failed: read in that order on the
            # endpoint's due index (a chunk reads a chunk, not every failed row), from the last
            # chunk's on, and only what had failed when this began (one that fails again
            # meanwhile is not taken twice).
            rows = (
                await session.execute(
                    select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
                    .where(
                        WebhookDelivery.endpoint_id == endpoint_id,
                        WebhookDelivery.status == "failed",
                        WebhookDelivery.next_attempt_at >= cursor,
                        WebhookDelivery.next_attempt_at <= now,
                        WebhookDelivery.created_at >= since,
                    )
                    .order_by(WebhookDelivery.next_attempt_at)
                    .limit(RECOVER_CHUNK)
                )
            ).all()
            if not rows:
                break
            cursor = rows[-1].next_attempt_at
            changed = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([row.id for row in rows]), WebhookDelivery.status == "failed")
                # Due now. (An attempt still in flight when a disabling failed its row ends within
                # the webhook timeout, 5 s, long before a person has enabled and recovered.)
                .values(status="pending", attempts=0, next_attempt_at=now, last_error=None)
                .execution_options(synchronize_session=False)
            )
            done = int(getattr(changed, "rowcount", 0) or 0)
        count += done
        if done:
            requeued(endpoint_id)
        if len(rows) < RECOVER_CHUNK:
            break
    # `complete` false: the endpoint was disabled meanwhile (what was made pending failed again).
    return {"id": endpoint_id, "since": iso(int(since * 1000)), "requeued": count, "complete": complete}


async def rotate_secret(
    database: Database,
    *,
    endpoint_id: str,
    box: SecretBox,
    recorder: Recorder | None = None,
    keep_previous_seconds: int = KEEP_PREVIOUS_SECONDS,
) -> dict[str, Any]:
    """A new secret at once, answered this once; the replaced one still signs beside it for
    `keep_previous_seconds` (0: never again, for a secret that leaked). A rotation within the
    overlap replaces the older secret: at most two sign.

    Conditional on the last rotation's time read before the write (the secret's own version;
    the secret itself is never compared in the open): of rotations racing on one endpoint one
    wins and the others are Conflict (409), so no caller holds a secret that was replaced before
    it was answered (20 parallel calls gave 20 secrets, of which only one signed)."""
    async with database.session() as session:
        current = await _endpoint(session, endpoint_id)
        rotated_at, replaced = current.secret_rotated_at, current.secret
    secret = new_secret()
    now = time.time()
    overlap = keep_previous_seconds > 0
    keep = {
        "previous_secret": replaced if overlap else None,
        "previous_secret_until": now + keep_previous_seconds if overlap else None,
    }
    unchanged = (
        WebhookEndpoint.secret_rotated_at.is_(None)
        if rotated_at is None
        else WebhookEndpoint.secret_rotated_at == rotated_at
    )
    async with database.transaction() as session:
        changed = await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, unchanged)
            .values(secret=box.seal(secret), secret_rotated_at=now, **keep)
            .execution_options(synchronize_session=False)
        )
        if not getattr(changed, "rowcount", 0):
            await _endpoint(session, endpoint_id)  # deleted meanwhile: 404
            raise Conflict(
                f"The secret of webhook endpoint {endpoint_id!r} was rotated by another request meanwhile; "
                "the secret in force is the one that request was answered. Rotate again to replace it."
            )
        if recorder is not None:
            await recorder.record(
                session,
                "webhook.rotate_secret",
                endpoint_id,
                keep_previous_seconds=max(keep_previous_seconds, 0),
            )
    until = keep["previous_secret_until"]
    return {"id": endpoint_id, "secret": secret, "previous_secret_until": until}


async def recent_attempts(session: AsyncSession, *, endpoint_id: str, limit: int) -> dict[str, Any]:
    """The endpoint's latest attempts, newest first."""
    await _endpoint(session, endpoint_id)
    rows = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.endpoint_id == endpoint_id)
        .order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc())
        .limit(limit)
    )
    return {"attempts": [fields_of(a, ATTEMPT_FIELDS) for a in rows]}


async def chat_directory(database: Database, *, app_url: str) -> ChatDirectory:
    """What chat messages name in words: every store (name, zone, language) and staff member."""
    async with database.session() as session:
        stores = (await session.execute(select(Store.id, Store.name, Store.timezone, Store.language))).all()
        staff = (await session.execute(select(Staff.id, Staff.name))).all()
    return ChatDirectory(
        stores={row.id: StoreFacts(row.name, row.timezone, row.language) for row in stores},
        staff={row.id: row.name for row in staff},
        app_url=app_url,
    )


async def send_test(
    database: Database, *, endpoint_id: str, sender: WebhookSender, box: SecretBox, app_url: str = ""
) -> dict[str, Any]:
    """A signed `webhook.test` message sent now, once (whatever the endpoint subscribes to, and
    even when it is disabled: the way to see a fixed receiver answer); the attempt is recorded."""
    async with database.session() as session:
        endpoint = await _endpoint(session, endpoint_id)
    now = time.time()
    msg_id = message_id()
    body = orjson.dumps(
        {
            "type": TEST_TYPE,
            "timestamp": iso(int(now * 1000)),
            "data": {"endpoint_id": endpoint_id, "message": "A test message from Frontline VoC."},
        }
    )
    directory = await chat_directory(database, app_url=app_url) if endpoint.format != "standard" else None
    sent = render(body, endpoint.format, directory)
    try:
        secret, previous = box.open_signing(
            endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_until, now=now
        )
    except ValueError as exc:
        raise Conflict(f"{exc}: rotate the endpoint's secret.") from exc
    headers = signed_headers(secret, msg_id=msg_id, body=sent, previous=previous)
    attempt = await sender.send(endpoint.url, body=sent, headers=headers)
    async with database.transaction() as session:
        if await session.get(WebhookEndpoint, endpoint_id) is not None:
            row = attempt.as_row(
                endpoint_id=endpoint_id, delivery_id=msg_id, event_type=TEST_TYPE, attempted_at=now
            )
            session.add(WebhookAttempt(**row))
    return {"delivery_id": msg_id, "ok": attempt.ok, **dataclasses.asdict(attempt)}
