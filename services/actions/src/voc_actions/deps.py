"""What the actions routes take from the request: settings and the live library, from what
`build_app` put on `app.state` (who may call a route: the platform's `require(permission)`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from voc_actions.live import LiveLibrary
from voc_actions.settings import Settings
from voc_platform.audit import Audit
from voc_platform.http import app_state

SettingsDep = Annotated[Settings, Depends(app_state("settings"))]
LiveDep = Annotated[LiveLibrary, Depends(app_state("live"))]
AuditDep = Annotated[Audit, Depends(app_state("audit"))]
