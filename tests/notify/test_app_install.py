"""The staff app is installable (#23): a complete manifest whose PNG icons are what they say
(type, size, purpose; the maskable one keeps its content in the safe zone and bleeds to the
edge), committed icons equal to what scripts/make_icons.py draws, and the iOS/iPadOS markup
checked statically (WebKit is not available here: a PNG apple-touch-icon of 180, a standalone
Home Screen app, its title and status bar), all as the notify app serves them."""

from __future__ import annotations

import io
import math
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import DatabaseFactory
from tests.notify.conftest import Notify, make_notify
from voc_notify import auth

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def notify(databases: DatabaseFactory) -> AsyncIterator[Notify]:
    service = await make_notify(databases, auth.hash_password("right-password-1"))
    yield service
    await service.database.dispose()


class Head(HTMLParser):
    """The <link> and <meta> tags of a page, and its scripts in order."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.metas: dict[str, str] = {}
        self.scripts: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "link":
            self.links.append(values)
        elif tag == "meta" and "name" in values:
            self.metas[values["name"]] = values.get("content", "")
        elif tag == "script":
            self.scripts.append(values)


async def fetch_image(notify: Notify, src: str) -> tuple[str, Image.Image]:
    async with notify.client() as client:
        response = await client.get(src)
    assert response.status_code == 200, src
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return response.headers["content-type"], image


async def test_the_manifest_is_complete_and_its_icons_are_what_they_say(notify: Notify) -> None:
    async with notify.client() as client:
        response = await client.get("/manifest.webmanifest")
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["id"] == "/" and manifest["scope"] == "/" and manifest["start_url"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["lang"] in ("ko", "en") and manifest["name"] and manifest["short_name"]
    for key in ("theme_color", "background_color"):
        assert re.fullmatch(r"#[0-9a-f]{6}", manifest[key]), key
    pngs = [i for i in manifest["icons"] if i["type"] == "image/png"]
    by_purpose = {(i["purpose"], i["sizes"]) for i in pngs}
    assert {("any", "192x192"), ("any", "512x512"), ("maskable", "512x512")} <= by_purpose
    for icon in pngs:
        content_type, image = await fetch_image(notify, icon["src"])
        assert content_type == "image/png" and image.format == "PNG", icon
        width, height = (int(n) for n in icon["sizes"].split("x"))
        assert image.size == (width, height), icon

    [maskable] = [i for i in pngs if i["purpose"] == "maskable"]
    _, image = await fetch_image(notify, maskable["src"])
    rgb = image.convert("RGB")
    size = rgb.width
    theme = tuple(int(manifest["theme_color"][i : i + 2], 16) for i in (1, 3, 5))
    # Full bleed: every edge pixel is the brand colour (a mask may cut anywhere outside the
    # safe zone); everything that is not the brand colour lies inside the safe zone's circle
    # (radius 40 % of the size around the centre).
    edge = [rgb.getpixel((x, y)) for x in range(size) for y in (0, size - 1)]
    assert all(max(abs(a - b) for a, b in zip(p, theme, strict=True)) < 8 for p in edge)
    centre, safe = size / 2, 0.4 * size
    for x in range(0, size, 4):
        for y in range(0, size, 4):
            pixel = rgb.getpixel((x, y))
            if max(abs(a - b) for a, b in zip(pixel, theme, strict=True)) > 40:
                assert math.hypot(x - centre, y - centre) <= safe, (x, y, pixel)


async def test_the_ios_markup_is_there(notify: Notify) -> None:
    async with notify.client() as client:
        page = (await client.get("/")).text
    head = Head()
    head.feed(page)
    touch = [link for link in head.links if link.get("rel") == "apple-touch-icon"]
    assert len(touch) == 1 and touch[0]["sizes"] == "180x180"
    content_type, image = await fetch_image(notify, touch[0]["href"])
    # iOS wants an opaque PNG (an SVG or transparency shows as black or a screenshot).
    assert content_type == "image/png" and image.size == (180, 180) and image.mode == "RGB"
    assert head.metas["apple-mobile-web-app-capable"] == "yes"
    assert head.metas["mobile-web-app-capable"] == "yes"
    assert head.metas["apple-mobile-web-app-status-bar-style"] in ("default", "black", "black-translucent")
    assert head.metas["apple-mobile-web-app-title"]
    assert "viewport-fit=cover" in head.metas["viewport"]
    assert any(
        link.get("rel") == "manifest" and link["href"] == "/manifest.webmanifest" for link in head.links
    )
    # store.js (the session the worker shares) loads before the app module.
    sources = [s.get("src") for s in head.scripts]
    assert sources == ["/static/store.js", "/static/app.js"]


async def test_the_worker_offers_the_notification_actions_and_resubscribes(notify: Notify) -> None:
    """Static checks of what Chromium cannot show here: the rotation handler is registered and
    the notification carries both actions and urgent pages stay on screen."""
    async with notify.client() as client:
        worker = (await client.get("/sw.js")).text
    assert "importScripts('/static/store.js')" in worker
    for needle in (
        "addEventListener('pushsubscriptionchange'",
        "{ action: 'ack'",
        "{ action: 'open'",
        "requireInteraction: payload.priority === 'urgent'",
        "options.renotify = true",
    ):
        assert needle in worker, needle


async def test_the_offline_shell_holds_everything_the_app_starts_with(notify: Notify) -> None:
    """The worker caches the app shell for an offline start: each file it lists is served, and
    among them the language files app.js reads before its first render (#16)."""
    async with notify.client() as client:
        worker = (await client.get("/sw.js")).text
        shell_list = re.search(r"const SHELL = \[(.*?)\];", worker, re.S)
        assert shell_list is not None
        shell = re.findall(r"'([^']+)'", shell_list.group(1))
        languages = {"/static/i18n/ko.json", "/static/i18n/en.json"}
        assert {"/", "/static/store.js", "/static/app.js", *languages} <= set(shell)
        for path in shell:
            assert (await client.get(path)).status_code == 200, path
    # The cache is named by the app's version: a new shell comes with a new version, and the
    # activated worker drops the caches of the old one.
    assert "const CACHE = `voc-shell-${APP_VERSION}`;" in worker


def test_the_committed_icons_are_what_the_script_draws() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/make_icons.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
