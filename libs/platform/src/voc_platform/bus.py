"""NATS JetStream: streams, publishing with dedup ids, and durable pull consumers.

Consumers ack explicitly after their handler committed; a failing message is redelivered with
growing delays up to `max_deliver` times, then copied to the dead-letter stream and terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind

from voc_platform import metrics, telemetry

log = logging.getLogger(__name__)

EVENTS_STREAM = "VOC"
DLQ_STREAM = "VOC_DLQ"
#: How long the bus keeps an event, and a dead letter (which a replay may deliver after that):
#: an event may reach a consumer up to their sum after it was published.
EVENTS_MAX_AGE_SECONDS = 7 * 24 * 3600
DEAD_LETTERS_MAX_AGE_SECONDS = 30 * 24 * 3600
STATUS_HEADER = "Status"  # JetStream status messages (408 request expired, 409, 100 heartbeat)
PULL_EXPIRES_SECONDS = 2.0  # an idle consumer asks again this often
PULL_GRACE_SECONDS = 0.5
# Acks of handlers that finish within this window leave in one socket write. An ack only
# tells JetStream not to redeliver (the handler's work is committed and idempotent), so a few
# milliseconds here are off the critical path; each write on loopback cost more than the ack.
ACK_DELAY_SECONDS = 0.004

Handler = Callable[[Msg], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    durable: str
    subjects: Sequence[str]
    handler: Handler
    max_deliver: int = 6
    backoff: Sequence[float] = (0.5, 2.0, 5.0, 15.0, 30.0)
    ack_wait: float = 30.0
    concurrency: int = 32
    batch: int = 64
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NatsSecurity:
    """How a service proves who it is to NATS and keeps the connection private: a user and
    password, a `.creds` file (user JWT + nkey seed) or an nkey seed file; TLS with the CA that
    signed the servers' certificates and, when the server verifies clients, a client
    certificate. All empty: a plain connection (the embedded nats-server of `make run`)."""

    user: str | None = None
    password: str | None = None
    creds: Path | None = None
    nkey_seed: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def tls_context(self, *, required: bool = False) -> ssl.SSLContext | None:
        """The client TLS context (server certificate and host name verified), or None."""
        if not (required or self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=str(self.tls_ca) if self.tls_ca else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls_cert and self.tls_key:
            context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        return context

    def connect_options(self, servers: Sequence[str]) -> dict[str, Any]:
        """The `nats.connect` keywords for these credentials and this TLS."""
        options: dict[str, Any] = {}
        if self.user is not None:
            options.update(user=self.user, password=self.password)
        if self.creds is not None:
            options["user_credentials"] = str(self.creds)
        if self.nkey_seed is not None:
            options["nkeys_seed"] = str(self.nkey_seed)
        context = self.tls_context(required=any(s.startswith(("tls://", "wss://")) for s in servers))
        if context is not None:
            options["tls"] = context
        return options


# A durable consumer's gauges, read from JetStream's consumer info at scrape time:
# (name, help, the ConsumerInfo field).
_CONSUMER_GAUGES = (
    (
        "voc_consumer_pending_messages",
        "Messages in the stream not yet delivered to the durable consumer (its lag).",
        "num_pending",
    ),
    (
        "voc_consumer_ack_pending_messages",
        "Messages delivered to the durable consumer and not yet acknowledged.",
        "num_ack_pending",
    ),
    (
        "voc_consumer_redelivered_messages",
        "Messages the durable consumer has delivered more than once and not yet acknowledged.",
        "num_redelivered",
    ),
)


class Bus:
    def __init__(
        self,
        url: str,
        *,
        name: str,
        replicas: int = 1,
        security: NatsSecurity | None = None,
        inbox_prefix: str = "_INBOX",
    ) -> None:
        self.url = url
        self.name = name
        self.replicas = replicas
        self.security = security or NatsSecurity()
        # Replies (JetStream acks, API answers, pulled messages) arrive under this prefix; a
        # service's own prefix lets NATS permissions keep every other user out of its replies.
        self.inbox_prefix = inbox_prefix
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        # One per pull loop: set on reconnect, when the server may have dropped the open request.
        self._renewals: set[asyncio.Event] = set()
        self._acks: list[Msg] = []
        self._ack_timer: asyncio.TimerHandle | None = None
        self._ack_tasks: set[asyncio.Task[None]] = set()
        self._consumer_metrics: dict[str, metrics.ConsumerMetrics] = {}

    async def connect(self, *, timeout: float = 10.0) -> None:
        servers = [s.strip() for s in self.url.split(",") if s.strip()]
        self.nc = await nats.connect(
            servers=servers,
            name=self.name,
            inbox_prefix=self.inbox_prefix,
            **self.security.connect_options(servers),
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnect,
            reconnected_cb=self._on_reconnect,
        )
        self.js = self.nc.jetstream(timeout=timeout)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    async def _on_disconnect(self) -> None:
        log.warning("nats disconnected")

    async def _on_reconnect(self) -> None:
        log.info("nats reconnected")
        for renew in self._renewals:
            renew.set()

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def ensure_streams(self) -> None:
        """Create (or update) the event and dead-letter streams; file-backed, deduplicating."""
        js = self._js()
        for config in (
            StreamConfig(
                name=EVENTS_STREAM,
                subjects=["voc.>"],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                max_age=EVENTS_MAX_AGE_SECONDS,
                duplicate_window=120,
                num_replicas=self.replicas,
            ),
            StreamConfig(
                name=DLQ_STREAM,
                subjects=["dlq.>"],
                storage=StorageType.FILE,
                max_age=DEAD_LETTERS_MAX_AGE_SECONDS,
                num_replicas=self.replicas,
            ),
        ):
            try:
                info = await js.stream_info(config.name)
            except NotFoundError:
                await js.add_stream(config)
                continue
            # Never downgrade: an operator (or the cluster tooling) may have raised replicas.
            config.num_replicas = max(info.config.num_replicas or 1, self.replicas)
            await js.update_stream(config)

    def _js(self) -> JetStreamContext:
        if self.js is None:
            raise RuntimeError("bus not connected")
        return self.js

    def _nc(self) -> Client:
        if self.nc is None:
            raise RuntimeError("bus not connected")
        return self.nc

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> None:
        """Publish and wait for JetStream's ack (the event counts as published only then)."""
        hdrs = dict(headers or {})
        if msg_id:
            hdrs["Nats-Msg-Id"] = msg_id
        await self._js().publish(subject, payload, headers=hdrs)
        metrics.count_published(subject)

    async def consume(self, spec: ConsumerSpec) -> None:
        """Start a durable pull consumer running `spec.handler` for each message."""
        js = self._js()
        config = ConsumerConfig(
            durable_name=spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=spec.max_deliver,
            ack_wait=spec.ack_wait,
            max_ack_pending=max(spec.concurrency * 4, 256),
            filter_subjects=list(spec.subjects) if len(spec.subjects) > 1 else None,
            filter_subject=spec.subjects[0] if len(spec.subjects) == 1 else None,
        )
        try:
            await js.consumer_info(EVENTS_STREAM, spec.durable)
            await js.add_consumer(EVENTS_STREAM, config)  # same durable: updates what may change
        except NotFoundError:
            await js.add_consumer(EVENTS_STREAM, config)
        except Exception:
            log.info("consumer %s exists; keeping its configuration", spec.durable)
        self._consumer_metrics.setdefault(spec.durable, metrics.ConsumerMetrics(spec.durable))
        self._tasks.append(asyncio.create_task(self._pull_loop(spec), name=spec.durable))

    async def _pull_loop(self, spec: ConsumerSpec) -> None:
        """Keep one pull request of `spec.batch` messages open and run each message as it arrives.

        A `fetch` per wake-up (nats-py) costs two requests and a "no messages" answer per
        message at moderate rates, each its own socket write; here the server streams up to a
        batch into one standing request, and a new request goes out when that one is used up
        or expires. Status messages (408 expired, 409) only end a request. Heartbeats are not
        asked for: after a reconnect the request is renewed at once, and one lost otherwise is
        replaced when it would have expired.
        """
        nc = self._nc()
        inbox = nc.new_inbox()
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{spec.durable}"
        expires = PULL_EXPIRES_SECONDS
        request = json.dumps({"batch": spec.batch, "expires": int(expires * 1e9)}).encode()
        limit = asyncio.Semaphore(spec.concurrency)
        renew = asyncio.Event()
        left = 0  # messages the open request may still bring

        async def arrived(msg: Msg) -> None:
            # Called for one message at a time (nats-py awaits it), so waiting for a free
            # handler slot holds the rest back: at most `concurrency` handlers run at once.
            nonlocal left
            if msg.headers and STATUS_HEADER in msg.headers:
                renew.set()  # the request expired or was refused: ask again
                return
            left -= 1
            if left <= 0:
                renew.set()
            await limit.acquire()
            task = asyncio.create_task(self._handle(msg, spec))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            task.add_done_callback(lambda _t: limit.release())

        # A callback subscription reads a plain queue; its async iterator spawns a task and an
        # asyncio.wait per message.
        sub = await nc.subscribe(inbox, cb=arrived)
        self._renewals.add(renew)
        try:
            while not self._stopping.is_set():
                try:
                    await nc.publish(subject, request, reply=inbox)
                except Exception as exc:
                    log.warning("pull request on %s failed: %s", spec.durable, exc)
                    await asyncio.sleep(0.5)
                    continue
                left = spec.batch
                renew.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(renew.wait(), expires + PULL_GRACE_SECONDS)
        finally:
            self._renewals.discard(renew)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _handle(self, msg: Msg, spec: ConsumerSpec) -> None:
        headers = dict(msg.headers or {})
        parent = telemetry.extract(headers) if "traceparent" in headers else None
        delivered = msg.metadata.num_delivered if msg.metadata else 1
        instruments = self._consumer_metrics.get(spec.durable) or metrics.ConsumerMetrics(spec.durable)
        consumed, errors, redelivered, dead_lettered = instruments.of(msg.subject)
        if delivered > 1:
            redelivered.inc()
        start = time.perf_counter()
        with telemetry.span(
            f"consume {msg.subject}",
            kind=SpanKind.CONSUMER,
            parent=parent,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": spec.durable,
                "messaging.message.id": headers.get("Nats-Msg-Id", ""),
                "voc.delivery_attempt": delivered,
            },
        ):
            try:
                await spec.handler(msg)
            except Exception as exc:
                instruments.handling.observe(time.perf_counter() - start)
                errors.inc()
                if delivered >= spec.max_deliver:
                    log.error("giving up on %s after %d attempts: %r", msg.subject, delivered, exc)
                    await self._dead_letter(msg, spec, exc)
                    dead_lettered.inc()
                    await msg.term()
                else:
                    delay = spec.backoff[min(delivered - 1, len(spec.backoff) - 1)]
                    log.warning(
                        "handler for %s failed (attempt %d), retry in %.1fs: %r",
                        msg.subject,
                        delivered,
                        delay,
                        exc,
                    )
                    await msg.nak(delay=delay)
                return
            instruments.handling.observe(time.perf_counter() - start)
            consumed.inc()
            self._ack_soon(msg)

    def _ack_soon(self, msg: Msg) -> None:
        self._acks.append(msg)
        if self._ack_timer is None:
            self._ack_timer = asyncio.get_running_loop().call_later(ACK_DELAY_SECONDS, self._send_acks)

    def _send_acks(self) -> None:
        self._ack_timer = None
        acks, self._acks = self._acks, []
        if acks:
            task = asyncio.ensure_future(self._ack_all(acks))
            self._ack_tasks.add(task)
            task.add_done_callback(self._ack_tasks.discard)

    async def _ack_all(self, acks: list[Msg]) -> None:
        # Each ack only appends to nats-py's pending buffer; the flusher writes them together.
        for msg in acks:
            try:
                await msg.ack()
            except Exception as exc:  # lost connection: JetStream redelivers, handlers are idempotent
                log.warning("ack of %s failed: %r", msg.subject, exc)

    async def flush_acks(self) -> None:
        """Send the acks still waiting for their window (at shutdown)."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        self._send_acks()
        if self._ack_tasks:
            await asyncio.wait(list(self._ack_tasks))

    async def _dead_letter(self, msg: Msg, spec: ConsumerSpec, exc: Exception) -> None:
        headers = dict(msg.headers or {})
        headers.update(
            {
                "Voc-Dead-Letter-Reason": repr(exc)[:500],
                "Voc-Dead-Letter-Consumer": spec.durable,
                "Voc-Original-Subject": msg.subject,
            }
        )
        original_id = headers.pop("Nats-Msg-Id", "")
        if original_id:
            headers["Nats-Msg-Id"] = f"{spec.durable}:{original_id}"
        try:
            await self._js().publish(f"dlq.{msg.subject}", msg.data, headers=headers)
        except Exception:
            log.exception("dead-letter publish failed")
            raise

    async def metric_families(self) -> list[metrics.Metric]:
        """Scrape time: whether NATS is connected, each durable consumer's pending (not yet
        delivered) and ack-pending messages from JetStream's consumer info, and the depth of the
        dead-letter stream. Nothing but the connection gauge while disconnected."""
        connected = metrics.gauge_family("voc_nats_connected", "1 while the service is connected to NATS.")
        connected.add_metric([], 1.0 if self.connected else 0.0)
        families: list[metrics.Metric] = [connected]
        if not self.connected or self.js is None:
            return families
        gauges = [
            (metrics.gauge_family(name, doc, ["consumer"]), read) for name, doc, read in _CONSUMER_GAUGES
        ]
        infos = await asyncio.gather(
            *(self.js.consumer_info(EVENTS_STREAM, durable) for durable in self._consumer_metrics)
        )
        for durable, info in zip(self._consumer_metrics, infos, strict=True):
            for family, read in gauges:
                family.add_metric([durable], float(getattr(info, read) or 0))
        families.extend(family for family, _ in gauges)
        dlq = metrics.gauge_family(
            "voc_dlq_messages", "Messages in the dead-letter stream (VOC_DLQ), every consumer's."
        )
        dlq.add_metric([], float((await self.js.stream_info(DLQ_STREAM)).state.messages or 0))
        return [*families, dlq]

    async def stop_consumers(self, *, timeout: float = 10.0) -> None:
        """Stop fetching and let in-flight handlers finish (they ack what they completed)."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=timeout)
        await self.flush_acks()

    async def close(self) -> None:
        """Flush what was published and close. Consumers were stopped (and their in-flight
        messages acked) by `stop_consumers`, so a full drain has nothing left to wait for; it
        would only hang on the pull subscriptions' expired fetch requests."""
        if self.nc is None or self.nc.is_closed:
            return
        await self.flush_acks()
        with contextlib.suppress(Exception):
            if self.nc.is_connected:
                await self.nc.flush(timeout=2)
        await self.nc.close()
