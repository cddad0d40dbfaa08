"""What the actions routes take from the request: settings and the live library, from what
`build_app` put on `app.state` (the admin guard is the platform's `require_admin`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voc_actions.live import LiveLibrary
from voc_actions.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_live(request: Request) -> LiveLibrary:
    live: LiveLibrary = request.app.state.live
    return live


LiveDep = Annotated[LiveLibrary, Depends(get_live)]
