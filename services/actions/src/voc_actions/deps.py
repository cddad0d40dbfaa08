"""What the actions routes take from the request: settings, the live library and the admin guard,
from what `build_app` put on `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voc_actions.live import LiveLibrary
from voc_actions.settings import Settings
from voc_platform.http import BearerDep, admin_guard


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_live(request: Request) -> LiveLibrary:
    live: LiveLibrary = request.app.state.live
    return live


LiveDep = Annotated[LiveLibrary, Depends(get_live)]


async def require_admin(settings: SettingsDep, credentials: BearerDep) -> None:
    """The admin token (the platform's guard, with this app's settings)."""
    await admin_guard(lambda: settings.admin_token)(credentials)
