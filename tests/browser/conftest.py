"""The browser tests' shared parts: a real headless Chromium (Debian's /usr/bin/chromium), phone
contexts, the system's origin, a second device of the shift lead at the push emulator (whose
decrypted pushes the tests hand to the browser's service worker), and small helpers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.conftest import RunningSystem
from tests.support.system import login
from tests.support.system import wait_for as shared_wait_for
from voc_cli.push_emulator import PushEmulator

CHROMIUM = "/usr/bin/chromium"
LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam, language "ko"
PHONE: ViewportSize = {"width": 390, "height": 844}

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's assertions wait 5 s by default; on a loaded two-core CI runner a complaint's way
# from feedback through classification, the bus and notify to the app's live stream can take
# longer. Waiting longer changes no assertion: each passes the moment it holds.
expect.set_options(timeout=15_000)

NEEDS_CHROMIUM = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed: `make test-browser`"),
]


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05, page: Page | None = None) -> Any:
    """Poll ``predicate``; with ``page``, wait through Playwright so its events (CDP) get dispatched."""
    sleep = (lambda seconds: page.wait_for_timeout(seconds * 1000)) if page is not None else time.sleep
    return shared_wait_for(predicate, timeout=timeout, interval=interval, sleep=sleep)


def stored_session(page: Page) -> Any:
    """The session the app keeps in IndexedDB (shared with its service worker), or None."""
    return page.evaluate("window.VocStore.kv.get('session')")


def staff_language(system: RunningSystem, staff_id: str) -> str | None:
    """The language the directory keeps for `staff_id` (what their pushes and alerts use)."""
    listed = httpx.get(f"{system.url('notify')}/v1/admin/staff", headers=system.admin_headers)
    language: str | None = next(m for m in listed.json()["staff"] if m["id"] == staff_id)["language"]
    return language


def post_feedback(system: RunningSystem, body: dict[str, Any]) -> str:
    key = system.store("store-gangnam")["api_key"]
    response = httpx.post(
        f"{system.url('feedback')}/v1/feedback", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def origin(running_system: RunningSystem) -> str:
    return running_system.url("notify").rstrip("/")


@pytest.fixture(scope="module")
def emulated_phone(running_system: RunningSystem, push_emulator: PushEmulator) -> str:
    """A second device of the shift lead at the push emulator: its decrypted pushes are what
    the test then hands to the browser's service worker. Returns the subscription id."""
    subscription = push_emulator.new_subscription(label=f"{LEAD} (browser test)")
    response = httpx.post(
        f"{running_system.url('notify')}/v1/devices",
        json=subscription,
        headers=login(running_system, LEAD),
    )
    assert response.status_code == 201, response.text
    return push_emulator.subscription_id(subscription)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


PHONE_OPTIONS: dict[str, Any] = {
    "viewport": PHONE,
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "ko-KR",
    "timezone_id": "Asia/Seoul",
    "service_workers": "allow",
}


def new_phone_context(
    browser: Browser, origin: str, *, notifications: bool = True, user_agent: str | None = None
) -> BrowserContext:
    """A phone-sized context; `notifications` grants the permission up front (as a user who
    allowed them before), `user_agent` poses as another phone (iOS Safari)."""
    context = browser.new_context(**PHONE_OPTIONS, **({"user_agent": user_agent} if user_agent else {}))
    if notifications:
        context.grant_permissions(["notifications"], origin=origin)
    context.set_default_timeout(15_000)
    return context


def sign_in(page: Page, origin: str, person: dict[str, Any]) -> None:
    """Through the login form, as a staff member would."""
    page.goto(f"{origin}/")
    page.fill("#email", person["email"])
    page.fill("#password", person["password"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("body[data-view=inbox]", state="attached")
    # Live from here: an alert raised after this call reaches the inbox over the stream.
    expect(page.locator("body[data-stream=open]")).to_be_attached(timeout=15_000)


def signed_in_phone(
    browser: Browser, origin: str, system: RunningSystem, email: str = LEAD
) -> Iterator[Page]:
    """A module's phone (the shift lead's, Korean) signed in through the form, for a fixture to
    `yield from`; closed after, failing the module's last test on an uncaught page error."""
    context = new_phone_context(browser, origin)
    page = context.new_page()
    errors = watch_page_errors(page)
    sign_in(page, origin, system.staff(email))
    yield page
    assert errors == [], f"uncaught errors in the page: {errors}"
    context.close()


CONSOLE_SESSION_KEY = "voc-console-session"  # session.js keeps the tokens here, in this tab only


def sign_in_console(page: Page, system: RunningSystem, email: str, *, lang: str = "ko") -> None:
    """Through the dashboard's staff sign-in form (#20 §2), as a manager would, until the board
    has loaded with their token."""
    page.goto(f"{system.url('feedback')}/dashboard#lang={lang}")
    page.fill("#email", email)
    page.fill("#password", system.staff(email)["password"])
    page.click("#login button[type=submit]")
    expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=15_000)


def console_token(page: Page) -> str:
    """The access token the signed-in console holds (to show what the services answer it)."""
    return str(page.evaluate(f"JSON.parse(sessionStorage.getItem('{CONSOLE_SESSION_KEY}')).access_token"))


def watch_page_errors(page: Page) -> list[str]:
    """Script errors and Content-Security-Policy violations of the page, as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    return errors


def go_offline(page: Page, offline: bool) -> None:
    """The phone loses (or finds) its signal: Playwright's offline emulation, which is CDP
    `Network.emulateNetworkConditions` on the page and on its service worker alike. Emulating the
    page alone (a CDP session of the page) left the worker online, and its Background Sync sent
    the queued actions while the page still showed them pending."""
    page.context.set_offline(offline)
