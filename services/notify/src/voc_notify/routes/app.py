"""The staff app: its page, service worker, manifest and static files."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import FileResponse

from voc_platform.errors import NotFound

STATIC = files("voc_notify").joinpath("static")
_FILES = frozenset(
    {
        "app.js",
        "i18n/ko.json",
        "i18n/en.json",
        "app.css",
        "store.js",
        "icon.svg",
        "icon-180.png",
        "icon-192.png",
        "icon-512.png",
        "icon-maskable-512.png",
        "badge-96.png",
    }
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(str(STATIC.joinpath("index.html")))


@router.get("/sw.js")
async def service_worker() -> FileResponse:
    # Served from the root so its scope covers the whole app.
    return FileResponse(
        str(STATIC.joinpath("sw.js")),
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


@router.get("/manifest.webmanifest")
async def manifest() -> FileResponse:
    return FileResponse(str(STATIC.joinpath("manifest.webmanifest")), media_type="application/manifest+json")


@router.get("/static/{name:path}")
async def static(name: str) -> FileResponse:
    # Only the files listed (the language files sit in static/i18n/); the type goes by the ending.
    if name not in _FILES:
        raise NotFound("No such file.")
    return FileResponse(str(STATIC.joinpath(*name.split("/"))))
