"""Who may check a customer in at a store: the admin token, or a store-app API key scoped to the
store. Keys and stores are feedback's (it issues the keys, keeps the store directory), so this
asks feedback over gRPC (`AuthorizeStore`), on the service credential (#18)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from grpc import aio

from voc.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from voc_platform.constant_time import same_secret
from voc_platform.errors import FieldError, Forbidden, Invalid, Unauthenticated, Unavailable
from voc_platform.grpc import PeerClient
from voc_profile.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who checked the customer in: `admin`, or `key:<prefix>` of the store key."""

    name: str


class StoreAccess(PeerClient[feedback_pb2_grpc.FeedbackServiceStub]):
    """Asks feedback over one long-lived channel, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(feedback_pb2_grpc.FeedbackServiceStub, settings.feedback_grpc_target, settings)
        self.settings = settings

    async def authorize(self, *, token: str, store_id: str) -> Caller:
        """The caller, when `token` may check customers in at `store_id`: 401 for an unknown,
        revoked or expired key, 403 for another store's key, 422 naming `body.store_id` for a
        store feedback does not know, 503 when feedback cannot be asked."""
        admin = same_secret(token, self.settings.admin_token)
        try:
            found = await self.stub().AuthorizeStore(
                feedback_pb2.AuthorizeStoreRequest(store_id=store_id, api_key="" if admin else token)
            )
        except aio.AioRpcError as exc:
            log.warning("feedback unavailable for a check-in (%s)", exc.code().name)
            raise Unavailable("The store directory cannot be reached; try again.") from exc
        if not admin and not found.key_valid:
            raise Unauthenticated("The API key is unknown, revoked or expired.")
        if not admin and store_id not in found.key_store_ids:
            raise Forbidden(f"This API key may not act for store '{store_id}'.")
        if not found.store_known:
            raise Invalid(
                f"No store '{store_id}'.", errors=[FieldError("body.store_id", f"unknown store '{store_id}'")]
            )
        return Caller("admin" if admin else f"key:{token[:12]}")
