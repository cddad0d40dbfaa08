"""The outreach report on the dashboard (#20): profile owns outreach work and computes the report
(`ProfileService.GetOutreachReport`); feedback asks it over gRPC, on the service credential, for
the stores it has already checked the reader may see, and adds the store names."""

from __future__ import annotations

import logging
from typing import Any

from grpc import aio

from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_feedback.settings import Settings
from voc_platform.errors import Unavailable
from voc_platform.grpc import PeerClient

log = logging.getLogger(__name__)


class OutreachReports(PeerClient[profile_pb2_grpc.ProfileServiceStub]):
    """Asks profile over one long-lived channel, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(profile_pb2_grpc.ProfileServiceStub, settings.profile_grpc_target, settings)

    async def report(
        self, *, stores: tuple[str, ...] | None, since: float | None, until: float | None
    ) -> dict[str, Any]:
        """The report for `stores` (None: every store); `Unavailable` (503) when profile cannot
        be asked."""
        if stores == ():
            return {"from": since, "to": until, "window_days": None, "rows": []}
        request = profile_pb2.GetOutreachReportRequest(
            store_ids=list(stores or ()),
            every_store=stores is None,
            from_ms=int(since * 1000) if since else 0,
            to_ms=int(until * 1000) if until else 0,
        )
        try:
            found = await self.stub().GetOutreachReport(request)
        except aio.AioRpcError as exc:
            log.warning("profile unavailable for the outreach report (%s)", exc.code().name)
            raise Unavailable("The outreach report cannot be reached; try again.") from exc

        def rate(value: float) -> float | None:
            return None if value < 0 else round(value, 4)

        return {
            "from": found.from_ms / 1000,
            "to": found.to_ms / 1000,
            "window_days": found.window_days,
            "rows": [
                {
                    "store_id": r.store_id,
                    "list_kind": r.list_kind,
                    "assigned": r.assigned,
                    "attempted": r.attempted,
                    "reached": r.reached,
                    "contact_rate": rate(r.contact_rate),
                    "came_back_reached": r.came_back_reached,
                    "not_reached": r.not_reached,
                    "came_back_not_reached": r.came_back_not_reached,
                    "revisit_rate_reached": rate(r.revisit_rate_reached),
                    "revisit_rate_not_reached": rate(r.revisit_rate_not_reached),
                    "still_open": r.still_open,
                }
                for r in found.rows
            ],
        }
