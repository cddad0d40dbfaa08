"""#18 in the staff PWA, in real Chromium against the system as processes: a heads-up push (a VIP
checked in at the store through profile's POST /v1/visits) reaching the app's service worker and
inbox, and the checklist kept on the server: ticked, reloaded, still ticked."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import CHROMIUM, new_phone_context, wait_for
from tests.conftest import RunningSystem
from tests.support.stores import FreshStore, fresh_store, staff_headers
from voc_cli.push_emulator import PushEmulator

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed: `make test-browser`"),
]


@pytest.fixture(scope="module")
def store(running_system: RunningSystem, push_emulator: PushEmulator) -> FreshStore:
    return fresh_store(running_system, push_emulator, roles=("shift_lead", "store_manager"))


@pytest.fixture(scope="module")
def origin(running_system: RunningSystem) -> str:
    return running_system.url("notify").rstrip("/")


@pytest.fixture(scope="module")
def page(browser: Browser, origin: str, store: FreshStore) -> Iterator[Page]:
    """The fresh store's shift lead, logged in through the form."""
    context = new_phone_context(browser, origin)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{origin}/")
    _, email, password, _ = store.staff["shift_lead"]
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    expect(page.locator("body[data-view=inbox]")).to_be_attached()
    expect(page.locator("body[data-stream=open]")).to_be_attached()
    yield page
    assert errors == [], f"uncaught errors in the page: {errors}"
    context.close()


def deliver_to_service_worker(page: Page, origin: str, payload: dict[str, Any]) -> None:
    """Hand the decrypted push to the app's service worker, as the browser's push service would."""
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"])
    )
    cdp.send("ServiceWorker.enable")
    registration = wait_for(
        lambda: next(
            (r for r in registrations if r["scopeURL"] == f"{origin}/" and not r.get("isDeleted")), None
        ),
        timeout=10,
        page=page,
    )
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration["registrationId"], "data": json.dumps(payload)},
    )
    cdp.detach()


def test_a_heads_up_push_reaches_the_staff_app(
    page: Page, running_system: RunningSystem, push_emulator: PushEmulator, store: FreshStore, origin: str,
    artifacts: Path,
) -> None:  # fmt: skip
    loyalty = f"L-browser-{secrets.token_hex(3)}"
    made = httpx.post(
        f"{running_system.url('profile')}/v1/customers",
        json={"customers": [{"loyalty_id": loyalty, "name": "김민수", "tier": "vip"}]},
        headers=running_system.admin_headers,
    )
    assert made.status_code == 200, made.text
    ready = page.evaluate(
        "Promise.race([navigator.serviceWorker.ready.then(r => !!r.active),"
        " new Promise(r => setTimeout(() => r(false), 15000))])"
    )
    assert ready, "the service worker never became active"

    phone = store.subscription("shift_lead")
    before = len(push_emulator.received(phone))
    checked_in = httpx.post(
        f"{running_system.url('profile')}/v1/visits",
        json={"store_id": store.id, "customer": {"loyalty_id": loyalty}, "channel": "kiosk"},
        headers=store.headers(),
    )
    assert checked_in.status_code == 202 and checked_in.json()["heads_up"], checked_in.text
    push = push_emulator.wait_for_count(before + 1, timeout=30, subscription_id=phone)[-1]
    payload = push.json
    assert payload["kind"] == "heads_up"

    deliver_to_service_worker(page, origin, payload)
    body = page.locator("body")
    expect(body).to_have_attribute("data-last-push", payload["alert_id"])
    expect(page.locator("#toast")).to_contain_text(payload["title"])
    row = page.locator(f'a.alert-row[data-alert-id="{payload["alert_id"]}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-kind", "heads_up")
    expect(row.locator(".kind")).to_have_text("방문 알림")
    page.screenshot(path=artifacts / "staff-app-heads-up-inbox.png")

    row.click()
    expect(
        page.locator(f'#detail[data-alert-id="{payload["alert_id"]}"][data-kind=heads_up]')
    ).to_be_visible()
    expect(page.locator("#arrival-name")).to_have_text("김**")
    expect(page.locator("#arrival-reasons li").first).to_have_text("VIP")
    expect(page.locator("#plan-title")).to_contain_text("김민수")
    expect(page.locator("#feedback-text")).to_have_count(0)  # no feedback item behind a heads-up
    page.screenshot(path=artifacts / "staff-app-heads-up-detail.png")


def test_the_checklist_is_kept_across_a_reload(
    page: Page, running_system: RunningSystem, store: FreshStore, artifacts: Path
) -> None:
    assert page.locator("#detail[data-kind=heads_up]").count() == 1  # the heads-up from above
    alert_id = page.locator("#detail").get_attribute("data-alert-id")
    steps = page.locator("#plan-steps li")
    assert steps.count() >= 2
    steps.nth(0).locator("input").check()
    expect(steps.nth(0)).to_have_attribute("data-done", "true")
    steps.nth(1).locator("input").check()
    expect(steps.nth(1)).to_have_attribute("data-done", "true")

    page.reload()
    expect(page.locator(f'#detail[data-alert-id="{alert_id}"]')).to_be_visible()
    steps = page.locator("#plan-steps li")
    expect(steps.nth(0).locator("input")).to_be_checked()
    expect(steps.nth(1).locator("input")).to_be_checked()
    expect(steps.nth(2).locator("input")).not_to_be_checked()
    expect(steps.nth(0).locator(".step-by")).to_contain_text("(나)")
    page.screenshot(path=artifacts / "staff-app-checklist-after-reload.png")

    # The server has it, with who and when: the store manager reads the log.
    manager = staff_headers(running_system, store, "store_manager")
    seen = httpx.get(f"{running_system.url('notify')}/v1/alerts/{alert_id}", headers=manager).json()
    lead_id = store.staff["shift_lead"][0]
    assert [(s["done"], s["done_by"]) for s in seen["checklist"][:2]] == [(True, lead_id), (True, lead_id)]
    assert [(m["index"], m["staff_id"]) for m in seen["checklist_log"]] == [(0, lead_id), (1, lead_id)]
