"""Every service serves the published taxonomy live (#20 §3): it asks actions (`GetTaxonomy`)
at start and every minute, and serves each `voc.actions.taxonomy_published` event the moment it
arrives; until then it serves the seed (taxonomy.yaml), so a service starts without actions."""

from __future__ import annotations

import asyncio
import logging

from grpc import aio
from nats.aio.msg import Msg

from voc.actions.v1 import actions_pb2, actions_pb2_grpc
from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc_platform import taxonomy
from voc_platform.grpc import client_channel
from voc_platform.settings import ServiceSettings

log = logging.getLogger(__name__)

SUBJECT_PUBLISHED = "voc.actions.taxonomy_published"
POLL_SECONDS = 60.0


def to_proto(t: taxonomy.Taxonomy) -> common_pb2.Taxonomy:
    return common_pb2.Taxonomy(
        version=t.version,
        categories=[
            common_pb2.TaxonomyCategory(
                id=c.id, label_ko=c.ko, label_en=c.en, parent=c.parent or "",
                default_severity=c.severity, department_id=c.department or "", retired=c.retired,
            )
            for c in t.categories
        ],
        departments=[
            common_pb2.TaxonomyDepartment(id=d.id, name_ko=d.ko, name_en=d.en) for d in t.departments
        ],
    )  # fmt: skip


def from_proto(message: common_pb2.Taxonomy) -> taxonomy.Taxonomy:
    return taxonomy.Taxonomy(
        version=message.version,
        categories=tuple(
            taxonomy.Category(
                c.id, c.label_ko, c.label_en, c.parent or None, c.default_severity or "medium",
                c.department_id or None, c.retired,
            )
            for c in message.categories
        ),
        departments=tuple(taxonomy.Department(d.id, d.name_ko, d.name_en) for d in message.departments),
    )  # fmt: skip


def serve_event(data: bytes) -> bool:
    """Serve the taxonomy a `TaxonomyPublished` event carries (unless a newer one is served)."""
    event = events_pb2.TaxonomyPublished.FromString(data)
    served = taxonomy.serve(from_proto(event.taxonomy))
    if served:
        log.info("taxonomy version %d served", event.taxonomy.version)
    return served


class TaxonomyFollower:
    """One per service process that reads categories (feedback, notify, profile)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._channel: aio.Channel | None = None

    async def fetch(self) -> bool:
        """Ask actions for the published taxonomy and serve it if newer."""
        if self._channel is None:
            self._channel = client_channel(
                self.settings.actions_grpc_target,
                token=self.settings.internal_token,
                timeout=5,
                tls=self.settings.grpc_tls(),
            )
        stub = actions_pb2_grpc.ActionsServiceStub(self._channel)
        reply = await stub.GetTaxonomy(actions_pb2.GetTaxonomyRequest())
        return taxonomy.serve(from_proto(reply.taxonomy))

    async def on_published(self, msg: Msg) -> None:
        try:
            serve_event(msg.data)
        except Exception:
            log.exception("taxonomy event unreadable; the periodic check catches up")

    async def run(self) -> None:
        """Fetch now, then every minute (the fallback for a missed event)."""
        try:
            while True:
                try:
                    await self.fetch()
                except Exception as exc:
                    log.warning("taxonomy not fetched from actions (%s); serving version %d",
                                exc, taxonomy.current().version)  # fmt: skip
                await asyncio.sleep(POLL_SECONDS)
        finally:
            if self._channel is not None:
                await self._channel.close()
