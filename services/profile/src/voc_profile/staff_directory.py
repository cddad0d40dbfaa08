"""Who an outreach assignee is: the staff directory is notify's, so profile asks it over gRPC
(`NotifyService.GetStaffMember`, on the service credential) when a manager assigns a customer,
never on a hot path. The assignee's later calls are checked against their own token's claims."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from grpc import aio

from voc.notify.v1 import notify_pb2, notify_pb2_grpc
from voc_platform.errors import Unavailable
from voc_platform.grpc import PeerClient
from voc_platform.records import copy_fields
from voc_profile.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StaffMember:
    staff_id: str
    name: str
    role: str
    active: bool
    store_ids: tuple[str, ...]
    area_store_ids: tuple[str, ...]

    def works_at(self, store_id: str) -> bool:
        """Whether the store is one of theirs (an area manager: one of their area's too)."""
        return store_id in self.store_ids or store_id in self.area_store_ids


class StaffDirectory(PeerClient[notify_pb2_grpc.NotifyServiceStub]):
    """Asks notify over one long-lived channel, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(notify_pb2_grpc.NotifyServiceStub, settings.notify_grpc_target, settings)

    async def member(self, staff_id: str) -> StaffMember | None:
        """The staff member, or None when the directory has no such id; `Unavailable` (503)
        when notify cannot be asked."""
        try:
            found = await self.stub().GetStaffMember(notify_pb2.GetStaffMemberRequest(staff_id=staff_id))
        except aio.AioRpcError as exc:
            log.warning("notify unavailable for a staff lookup (%s)", exc.code().name)
            raise Unavailable("The staff directory cannot be reached; try again.") from exc
        if not found.found:
            return None
        return copy_fields(
            StaffMember, found, store_ids=tuple(found.store_ids), area_store_ids=tuple(found.area_store_ids)
        )
