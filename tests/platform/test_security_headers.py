"""Pages and assets of feedback (follow-up survey, dashboard) and notify (the staff app) in
process: caller input never reaches the markup unescaped (the follow-up pages' `lang` field was
reflected into `<html lang>`), no page carries inline script or style, and every response
carries the strict Content-Security-Policy, `nosniff` and `Referrer-Policy`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.conftest import DatabaseFactory
from voc_feedback import api as feedback_api
from voc_feedback.__main__ import MIGRATIONS as FEEDBACK_MIGRATIONS
from voc_feedback.settings import Settings as FeedbackSettings
from voc_notify import api as notify_api
from voc_notify.settings import Settings as NotifySettings
from voc_notify.stream import AlertBroker
from voc_notify.webpush import PushAllowlist, VapidKeys
from voc_platform import migrations
from voc_platform.db import Database

ROOT = Path(__file__).resolve().parents[2]
STAFF_LANGUAGES = ROOT / "services" / "notify" / "src" / "voc_notify" / "static" / "i18n"
CONSOLE_LANGUAGES = ROOT / "services" / "feedback" / "src" / "voc_feedback" / "dashboard" / "i18n"
EVIL_LANG = '"><script>alert(document.domain)</script><html lang="'
EVIL_TOKEN = 'x"><img src=x onerror=alert(document.domain)>'
DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


class _Markup(HTMLParser):
    """What a CSP without 'unsafe-inline' would block: inline scripts, inline styles, style
    attributes, inline event handlers and javascript: URLs; and the document's `lang`."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "html":
            self.lang = named.get("lang")
        if (tag == "script" and not named.get("src")) or tag == "style":
            self.inline.append(f"<{tag}>")
        for name, value in attrs:
            if name == "style" or name.startswith("on") or (value or "").strip().startswith("javascript:"):
                self.inline.append(f"<{tag} {name}>")


def markup(html: str) -> _Markup:
    parser = _Markup()
    parser.feed(html)
    return parser


def assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers.get("content-security-policy", "")
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    for directive in DIRECTIVES:
        assert directive in csp, (response.request.url, directive)
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy") == "no-referrer"


@pytest.fixture
async def feedback(databases: DatabaseFactory) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(databases.url("feedback_pages"))
    await migrations.upgrade(database, FEEDBACK_MIGRATIONS, name="feedback")
    settings = FeedbackSettings(VOC_ENV="test", admin_token="pages-admin-token")
    app = feedback_api.build_app(settings, database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://f.test") as client:
        yield client
    await database.dispose()


@pytest.fixture
async def notify(databases: DatabaseFactory) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(databases.url("notify_pages"))
    settings = NotifySettings(VOC_ENV="test", admin_token="pages-admin-token")
    app = notify_api.build_app(
        settings, database, vapid=VapidKeys.generate(), allowlist=PushAllowlist(), broker=AlertBroker()
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n.test") as client:
        yield client
    await database.dispose()


async def test_the_lang_field_is_never_reflected(feedback: httpx.AsyncClient) -> None:
    """A made-up token is enough to reach the closed page; its language comes from the form. A
    form without a rating is drawn again about its case, so a made-up token gets the closed page
    there too (it was the empty form, 422)."""
    pages = [
        await feedback.post("/f/made-up", data={"csat": "5", "lang": EVIL_LANG}),
        await feedback.post("/f/made-up", data={"comment": "no rating", "lang": EVIL_LANG}),
        await feedback.get("/f/made-up", params={"lang": EVIL_LANG}),
        await feedback.post(f"/f/{EVIL_TOKEN}", data={"comment": "no rating", "lang": "en"}),
    ]
    assert [p.status_code for p in pages] == [404, 404, 404, 404]
    for page in pages:
        assert page.headers["content-type"].startswith("text/html")
        assert "<script" not in page.text and "<img" not in page.text, page.text
        parsed = markup(page.text)
        assert parsed.lang in ("ko", "en") and parsed.inline == []
        assert_security_headers(page)
    assert markup(pages[3].text).lang == "en"  # a language it speaks is kept


async def test_feedback_pages_and_assets_carry_the_policy(feedback: httpx.AsyncClient) -> None:
    for path, kind in (
        ("/f/made-up", "text/html"),
        ("/f/assets/follow-up.css", "text/css"),
        ("/dashboard", "text/html"),
        ("/dashboard/assets/dashboard.js", "text/javascript"),
        ("/dashboard/assets/dashboard.css", "text/css"),
        ("/dashboard/assets/i18n/ko.json", "application/json"),
        # Only the files listed: nothing else of the package, whatever the path says.
        ("/dashboard/assets/i18n%2F..%2F..%2Froutes%2Fdashboard.py", "application/problem+json"),
        ("/dashboard/assets/nope.js", "application/problem+json"),
        ("/v1/feedback", "application/problem+json"),  # the API's answers too
    ):
        response = await feedback.get(path)
        assert response.headers["content-type"].startswith(kind), path
        assert_security_headers(response)
        if kind == "text/html":
            assert markup(response.text).inline == [], path
    page = await feedback.get("/f/made-up")
    assert '<link rel="stylesheet" href="/f/assets/follow-up.css">' in page.text


async def test_the_staff_app_carries_the_policy(notify: httpx.AsyncClient) -> None:
    for path, kind in (
        ("/", "text/html"),
        ("/sw.js", "text/javascript"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/static/app.js", "text/javascript"),
        ("/static/app.css", "text/css"),
        ("/static/i18n/en.json", "application/json"),
        ("/static/i18n%2F..%2F..%2Fapi.py", "application/problem+json"),  # the files listed only
        ("/static/icon.svg", "image/svg+xml"),
        ("/static/nope", "application/problem+json"),
        ("/v1/push/vapid-public-key", "application/json"),
    ):
        response = await notify.get(path)
        assert response.headers["content-type"].startswith(kind), path
        assert_security_headers(response)
        if kind == "text/html":
            assert markup(response.text).inline == [], path


async def test_the_language_files_are_served_as_they_are(
    feedback: httpx.AsyncClient, notify: httpx.AsyncClient
) -> None:
    """The apps' words, one JSON file a language (#16): what the scripts fetch before they render."""
    for client, prefix, folder in (
        (notify, "/static/i18n", STAFF_LANGUAGES),
        (feedback, "/dashboard/assets/i18n", CONSOLE_LANGUAGES),
    ):
        for lang in ("ko", "en"):
            response = await client.get(f"{prefix}/{lang}.json")
            assert response.status_code == 200, response.url
            assert response.headers["content-type"] == "application/json", response.url
            assert response.json() == json.loads((folder / f"{lang}.json").read_text(encoding="utf-8"))
            assert_security_headers(response)
        assert (await client.get(f"{prefix}/fr.json")).status_code == 404


async def test_the_api_docs_have_their_own_policy(notify: httpx.AsyncClient) -> None:
    docs = await notify.get("/docs")
    csp = docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "base-uri 'none'" in csp
    assert docs.headers["x-content-type-options"] == "nosniff"
