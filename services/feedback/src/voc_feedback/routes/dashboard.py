"""The manager dashboard at `/dashboard`: static page and assets served here (no CDN); it reads
the analytics API with the caller's token."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from voc_platform.errors import NotFound

router = APIRouter(include_in_schema=False)
DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboard"
DASHBOARD_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


@router.get("/dashboard")
async def dashboard() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "index.html", media_type="text/html; charset=utf-8")


@router.get("/dashboard/assets/{name}")
async def dashboard_asset(name: str) -> FileResponse:
    if name not in DASHBOARD_ASSETS:
        raise NotFound(f"No dashboard asset '{name}'.")
    return FileResponse(DASHBOARD_DIR / name, media_type=DASHBOARD_ASSETS[name])
