"""Every replica reloads its taxonomy and library when any replica publishes (and checks every 30 s)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.aio.msg import Msg

from voc_actions import taxonomy
from voc_actions.live import LiveLibrary, reload_if_newer
from voc_platform.db import Database
from voc_platform.periodic import every

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Reloader:
    """The published event reaches every replica through a plain NATS subscription (fan-out);
    the periodic check covers a replica that was disconnected when it was sent."""

    database: Database
    live: LiveLibrary

    async def reload_if_newer(self) -> bool:
        # The taxonomy first: a newer publication may name a category only it has.
        newer_taxonomy = await taxonomy.reload_if_newer(self.database)
        return await reload_if_newer(self.database, self.live) or newer_taxonomy

    async def on_published(self, _msg: Msg) -> None:
        try:
            await self.reload_if_newer()
        except Exception:
            log.exception("reload after publish failed; the periodic check retries")

    async def periodic(self) -> None:
        await every(30, self.reload_if_newer, log=log, failed="periodic library check failed")
