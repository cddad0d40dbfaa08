"""The manager dashboard and console at `/dashboard`: static page and assets served here (no
CDN), and where the browser reaches notify and actions (`/dashboard/config.json`); the page signs
in at notify and calls each service's API with the staff member's own token."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from voc_feedback.deps import SettingsDep
from voc_platform.errors import NotFound

router = APIRouter(include_in_schema=False)
DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboard"
DASHBOARD_ASSETS = {
    "session.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "cases.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",  # the staff app's mark (a browser asks for an icon on every load)
    # The console's labels, one file a language (session.js reads them before the first render).
    "i18n/ko.json": "application/json",
    "i18n/en.json": "application/json",
}


@router.get("/dashboard")
async def dashboard() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "index.html", media_type="text/html; charset=utf-8")


@router.get("/dashboard/assets/{name:path}")
async def dashboard_asset(name: str) -> FileResponse:
    if name not in DASHBOARD_ASSETS:
        raise NotFound(f"No dashboard asset '{name}'.")
    return FileResponse(DASHBOARD_DIR / name, media_type=DASHBOARD_ASSETS[name])


@router.get("/dashboard/config.json")
async def dashboard_config(settings: SettingsDep) -> dict[str, str]:
    """The other services' public URLs ("" = this origin): no secret, the same for everyone."""
    return {
        "notify_url": settings.notify_public_url.rstrip("/"),
        "actions_url": settings.actions_public_url.rstrip("/"),
    }
