"""What the actions routes take from the request: settings and the live library, from what
`build_app` put on `app.state` (who may call a route: the platform's `require(permission)`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voc_actions.live import LiveLibrary
from voc_actions.publishing import PublishParts
from voc_actions.settings import Settings
from voc_platform.audit import Audit
from voc_platform.http import app_state

SettingsDep = Annotated[Settings, Depends(app_state("settings"))]
LiveDep = Annotated[LiveLibrary, Depends(app_state("live"))]
AuditDep = Annotated[Audit, Depends(app_state("audit"))]


async def get_publish_parts(request: Request) -> PublishParts:
    state = request.app.state
    return PublishParts(state.database, state.live, state.audit)


#: What the publishing routes (playbooks, taxonomy) write with, as one dependency.
PublishPartsDep = Annotated[PublishParts, Depends(get_publish_parts)]
