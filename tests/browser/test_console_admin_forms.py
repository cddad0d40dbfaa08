"""The console's Admin forms as a product walk-through found them, in headless Chromium against
the running system: a webhook's events are chosen from notify's own catalogue (labelled in the
reader's language, the raw type beside; "all events" stands alone; none chosen is refused on the
page); a refusal reads in the reader's language, naming the form's field and marking it, the
service's English kept as a detail (a 409, a 422, a network failure and a 5xx); an API key's stores
are picked from the store directory by name; tables name stores and departments, ids beside; an
endpoint notify disabled (#19) is told on the cx_admin's board and enabled again from its row; an
address notify no longer mails (a hard bounce) is found by its e-mail and lifted."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import (
    NEEDS_CHROMIUM,
    post_feedback,
    sign_in_console,
    wait_for,
    watch_page_errors,
)
from tests.browser.test_accessibility import violations
from tests.conftest import RunningSystem
from tests.feedback.conftest import run_async
from tests.support.webhook_receiver import WebhookReceiver
from voc_cli import demo
from voc_notify import suppressions
from voc_notify.channels.mail import mask_address
from voc_notify.webhooks.catalog import EVENT_TYPES
from voc_platform.db import Database

pytestmark = NEEDS_CHROMIUM
CX_ADMIN = "cx@hq.demo"
MANAGER = "seoyeon@gangnam.demo"  # store_manager of store-gangnam
WIDE = {"width": 1280, "height": 1400}


@pytest.fixture
def console(browser: Browser) -> Iterator[Page]:
    """A wide page for the CX admin's console, failing the test on an uncaught page error."""
    page = browser.new_page(viewport=WIDE, locale="ko-KR")
    errors = watch_page_errors(page)
    yield page
    page.close()
    assert errors == [], errors


def posts_to(page: Page, path: str) -> list[str]:
    """The page's POST requests to `path` from now on (to show that a refusal sent nothing)."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and r.url.endswith(path) else None)
    return sent


def webhooks_of(system: RunningSystem, url: str) -> list[dict[str, object]]:
    listed = httpx.get(f"{system.url('notify')}/v1/admin/webhooks", headers=system.admin_headers)
    assert listed.status_code == 200, listed.text
    return [w for w in listed.json()["webhooks"] if w["url"] == url]


def test_a_webhooks_events_are_chosen_from_notifys_catalogue(
    running_system: RunningSystem, console: Page, artifacts: Path
) -> None:
    page = console
    url = f"http://127.0.0.1:9/console-{uuid.uuid4().hex[:8]}"
    try:
        sign_in_console(page, running_system, CX_ADMIN)
        page.click("#nav button[data-view=webhooks]")
        group = page.locator("[data-testid=webhook-events]")
        choices = group.locator("input[type=checkbox][name=events]")
        expect(choices).to_have_count(1 + len(EVENT_TYPES))
        assert choices.evaluate_all("cs => cs.map(c => c.value)") == ["*", *EVENT_TYPES]
        # A Korean label and the raw type, in a named group.
        expect(group.locator("legend")).to_have_text("이벤트")
        resolved = group.locator("label", has=page.locator("input[value='alert.resolved']"))
        expect(resolved).to_contain_text("알림 해결")
        expect(resolved.locator("code")).to_have_text("alert.resolved")
        # "All events" is the default and stands alone: the single types are disabled under it.
        every = group.locator("input[value='*']")
        expect(every).to_be_checked()
        expect(group.locator("input[value='alert.created']")).to_be_disabled()
        every.uncheck()
        expect(group.locator("input[value='alert.created']")).to_be_enabled()

        # None chosen: refused on the page, in Korean, naming the group; nothing is sent.
        sent = posts_to(page, "/v1/admin/webhooks")
        page.fill("#webhook-form [name=url]", url)
        page.click("#webhook-form button[type=submit]")
        line = page.locator("#webhook-form .result")
        blamed = line.locator(".field-problem[data-field=events]")
        expect(blamed).to_have_text("이벤트: 하나 이상 골라 주세요")
        expect(line.locator(".summary")).to_have_text("입력한 내용을 확인해 주세요.")
        expect(group.locator("input[value='alert.created']")).to_have_attribute("aria-invalid", "true")
        expect(group.locator("input[value='*']")).to_be_focused()
        assert sent == [] and webhooks_of(running_system, url) == []
        page.screenshot(path=str(artifacts / "console-webhook-events.png"), full_page=True)

        # Two types chosen: registered with exactly those; the marks are gone.
        group.locator("input[value='alert.created']").check()
        expect(group.locator("input[value='alert.created']")).not_to_have_attribute("aria-invalid", "true")
        group.locator("input[value='follow_up.answered']").check()
        page.click("#webhook-form button[type=submit]")
        expect(page.locator("[data-testid=webhook-secret] .secret")).not_to_be_empty()
        [hook] = webhooks_of(running_system, url)
        assert hook["events"] == ["alert.created", "follow_up.answered"]
        # Leaving the view closes the secret (a box left open said nothing of whose it was).
        page.click(".admin-nav button[data-view=directory]")
        page.click("#nav button[data-view=webhooks]")
        expect(page.locator("[data-testid=webhook-secret]")).to_be_hidden()
        expect(page.locator("[data-testid=webhook-secret] .secret")).to_be_empty()
        # The form is back to "all events", which registers ["*"] whatever was ticked under it.
        expect(every).to_be_checked()
        expect(group.locator("input[value='alert.created']")).to_be_disabled()
        single = group.locator("input[value='alert.created']")
        single.evaluate("c => { c.disabled = false; c.checked = true; }")
        page.fill("#webhook-form [name=url]", url + "/all")
        page.click("#webhook-form button[type=submit]")
        expect(page.locator("[data-testid=webhook-table] tr", has_text=url + "/all")).to_have_count(1)
        assert [h["events"] for h in webhooks_of(running_system, url + "/all")] == [["*"]]
    finally:
        for address in (url, url + "/all"):
            for hook in webhooks_of(running_system, address):
                httpx.delete(
                    f"{running_system.url('notify')}/v1/admin/webhooks/{hook['id']}",
                    headers=running_system.admin_headers,
                )


def test_refusals_read_in_the_readers_language_naming_the_field(
    running_system: RunningSystem, console: Page, artifacts: Path
) -> None:
    page = console
    sign_in_console(page, running_system, CX_ADMIN)

    # 409 from notify: an e-mail another staff member has. The field is named by the form's own
    # label, marked and described by the line; the service's English is a secondary detail.
    page.click(".admin-nav button[data-view=directory]")
    form = page.locator("#staff-form")
    form.locator("[name=id]").fill(f"staff-dup-{uuid.uuid4().hex[:6]}")
    form.locator("[name=name]").fill("중복 이메일")
    form.locator("[name=email]").fill("minji@gangnam.demo")
    form.locator("[name=password]").fill("duplicate-pass-1")
    form.locator("button[type=submit]").click()
    line = form.locator(".result")
    expect(line).to_have_attribute("data-status", "409")
    expect(line.locator(".summary")).to_have_text("다른 변경과 충돌했습니다. 목록을 다시 보고 시도해 주세요.")
    expect(line.locator(".field-problem")).to_have_text(["이메일: 이미 사용 중입니다"])
    email = form.locator("[name=email]")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_attribute("aria-describedby", str(line.get_attribute("id")))
    detail = line.locator(".server-detail [lang=en]")
    expect(detail).to_contain_text("used by another staff member")
    page.screenshot(path=str(artifacts / "console-refusal-409.png"), full_page=True)
    # Typing in the field clears its mark; the password's own hint stays described.
    email.fill("someone-else@console.demo")
    expect(email).not_to_have_attribute("aria-invalid", "true")
    expect(email).not_to_have_attribute("aria-describedby", str(line.get_attribute("id")))
    expect(form.locator("[name=password]")).to_have_attribute("aria-describedby", "password-hint")

    # 422 from notify's validation (pydantic): a time zone that is none, named by its aria-label.
    stores = page.locator("#store-form")
    stores.locator("[name=id]").fill("store-nowhere")
    stores.locator("[name=name]").fill("어디에도 없는 매장")
    stores.locator("[name=timezone]").fill("Mars/Olympus")
    stores.locator("button[type=submit]").click()
    store_line = page.locator("#store-form ~ .result")
    expect(store_line.locator(".field-problem")).to_have_text(["시간대: 값을 확인해 주세요"])
    expect(stores.locator("[name=timezone]")).to_have_attribute("aria-invalid", "true")
    expect(store_line.locator(".server-detail")).to_contain_text("not an IANA time zone")

    # 422 from notify's own rule (a private address).
    page.click("#nav button[data-view=webhooks]")
    hooks = page.locator("#webhook-form")
    expect(hooks.locator("[data-testid=webhook-events] input")).not_to_have_count(0)
    hooks.locator("[name=url]").fill("https://10.0.0.8/hook")
    hooks.locator("button[type=submit]").click()
    hook_line = hooks.locator(".result")
    expect(hook_line.locator(".field-problem")).to_have_text(["URL: 값을 확인해 주세요"])
    expect(hooks.locator("[name=url]")).to_have_attribute("aria-invalid", "true")
    expect(hook_line.locator(".server-detail")).to_contain_text("private")
    # notify's reason once (it read "url: … · body.url: url: …").
    expect(hook_line.locator(".server-detail")).not_to_contain_text("body.url")

    # The network down, then a server error: each said as what it is, nothing thrown.
    page.route("**/v1/admin/webhooks", lambda route: route.abort())
    hooks.locator("[name=url]").fill("http://127.0.0.1:9/never")
    hooks.locator("button[type=submit]").click()
    expect(hook_line).to_have_attribute("data-status", "0")
    summary = hook_line.locator(".summary")
    expect(summary).to_have_text("서버에 연결하지 못했습니다. 네트워크를 확인해 주세요.")
    expect(hooks.locator("[name=url]")).not_to_have_attribute("aria-invalid", "true")
    page.unroute("**/v1/admin/webhooks")

    def unavailable(route: Route) -> None:
        # notify is another origin: the made-up answer (and its preflight) carry CORS headers.
        cors = {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Allow-Methods": "POST",
        }
        if route.request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors)
            return
        route.fulfill(
            status=503,
            headers=cors,
            content_type="application/problem+json",
            body=json.dumps({"title": "Service unavailable", "status": 503, "detail": "The bus is down."}),
        )

    page.route("**/v1/admin/webhooks", unavailable)
    hooks.locator("button[type=submit]").click()
    expect(hook_line).to_have_attribute("data-status", "503")
    expect(summary).to_have_text("서버에 문제가 생겼습니다. 잠시 후 다시 시도해 주세요.")
    expect(hook_line.locator(".server-detail")).to_have_text("서버 응답: The bus is down.")
    page.unroute("**/v1/admin/webhooks")


def test_an_api_keys_stores_are_picked_from_the_directory_by_name(
    running_system: RunningSystem, console: Page, artifacts: Path
) -> None:
    page = console
    name = f"picked {uuid.uuid4().hex[:6]}"
    sign_in_console(page, running_system, CX_ADMIN, lang="en")
    page.click("#nav button[data-view=keys]")
    picker = page.locator("[data-testid=key-stores]")
    expect(picker.locator("legend")).to_have_text("Stores")
    offered = picker.locator("input[name=store_ids]")
    expect(offered.first).to_be_attached()
    values = set(offered.evaluate_all("cs => cs.map(c => c.value)"))
    assert {s["id"] for s in demo.STORES} <= values, values
    gangnam = picker.locator("label", has=page.locator("input[value=store-gangnam]"))
    expect(gangnam).to_have_text("강남역점 (store-gangnam)")

    # None picked: refused on the page, nothing sent.
    sent = posts_to(page, "/v1/admin/api-keys")
    page.fill("#key-form [name=name]", name)
    page.click("#key-form button[type=submit]")
    line = page.locator("#key-form .result")
    expect(line.locator(".field-problem")).to_have_text(["Stores: choose at least one"])
    expect(picker.locator("input[value=store-gangnam]")).to_have_attribute("aria-invalid", "true")
    assert sent == []
    page.screenshot(path=str(artifacts / "console-key-stores.png"), full_page=True)

    picker.locator("input[value=store-gangnam]").check()
    picker.locator("input[value=store-hongdae]").check()
    page.click("#key-form button[type=submit]")
    expect(page.locator("[data-testid=key-secret] .secret")).not_to_be_empty()
    row = page.locator("[data-testid=key-table] tr", has_text=name)
    expect(row).to_have_count(1)
    # The table names the key's stores, their ids beside.
    stores_cell = row.locator("td").nth(2)
    expect(stores_cell).to_have_text("강남역점 (store-gangnam), 홍대입구점 (store-hongdae)")
    expect(stores_cell.locator("small.id")).to_have_text(["(store-gangnam)", "(store-hongdae)"])
    # Revoking asks by the key's name.
    row.locator("button.revoke").click()
    expect(page.locator("[data-testid=confirm] .question")).to_contain_text(name)
    page.locator("[data-testid=confirm] button.ok").click()
    expect(row).to_have_attribute("data-state", "revoked")
    feedback = running_system.url("feedback")
    keys = httpx.get(f"{feedback}/v1/admin/api-keys", headers=running_system.admin_headers)
    [key] = [k for k in keys.json() if k["name"] == name]
    assert key["store_ids"] == ["store-gangnam", "store-hongdae"]


def test_tables_name_stores_and_departments_with_their_ids(
    running_system: RunningSystem, console: Page
) -> None:
    officer = f"officer-{uuid.uuid4().hex[:6]}"
    put = httpx.put(
        f"{running_system.url('notify')}/v1/admin/staff",
        headers=running_system.admin_headers,
        json=[
            {
                "id": officer,
                "name": "식품안전 담당",
                "email": f"{officer}@hq.demo",
                "password": "officer-password-1",
                "role": "staff",
                "store_ids": ["store-gangnam"],
                "department_id": "hq_food_safety",
            }
        ],
    )
    assert put.status_code == 200, put.text
    page = console
    sign_in_console(page, running_system, CX_ADMIN)
    page.click(".admin-nav button[data-view=directory]")
    place = page.locator(f"[data-testid=staff-table] tr[data-id={officer}] td").nth(4)
    expect(place).to_have_text("강남역점 (store-gangnam) · 본사 식품안전팀 (hq_food_safety)")

    page.click("#nav button[data-view=taxonomy]")
    department = page.locator("[data-testid=taxonomy-table] tr[data-id=food_safety] td").nth(5)
    expect(department).to_have_text("본사 식품안전팀 (hq_food_safety)")


def test_a_disabled_webhook_is_told_on_the_board_and_enabled_again(
    running_system: RunningSystem, console: Page, webhook_receiver: WebhookReceiver, artifacts: Path
) -> None:
    """A receiver answering 410 Gone to a real event delivery disables its endpoint (notify); the
    cx_admin's board says so, naming it with the reason, and opens the Webhooks view, whose row
    says it in words with the reason and the time; "Enable again" makes it active. A store
    manager's board never asks notify's webhook list."""
    page = console
    notify = running_system.url("notify")
    admin = running_system.admin_headers
    path = f"/gone-{uuid.uuid4().hex[:8]}"
    description = f"CRM {uuid.uuid4().hex[:6]}"
    webhook_receiver.answer(path, 410)
    created = httpx.post(
        f"{notify}/v1/admin/webhooks",
        headers=admin,
        json={"url": webhook_receiver.url(path), "events": ["feedback.received"], "description": description},
    )
    assert created.status_code == 201, created.text
    hook_id = created.json()["id"]
    try:
        # A real event's delivery (a test message never disables: docs/NOTIFY.md "Disabling").
        post_feedback(
            running_system, {"store_id": "store-gangnam", "channel": "app", "text": "직원이 불친절해요"}
        )

        def disabled() -> dict[str, object] | None:
            shown = httpx.get(f"{notify}/v1/admin/webhooks/{hook_id}", headers=admin).json()
            return shown if shown["status"] == "disabled" else None

        endpoint = wait_for(disabled, timeout=30)
        reason = "the receiver answered 410 Gone"
        assert endpoint["disabled_reason"] == reason, endpoint
        listed = httpx.get(f"{notify}/v1/admin/webhooks", headers=admin).json()["webhooks"]
        count = sum(w["status"] == "disabled" for w in listed)
        # What it misses while disabled is kept, to send once it is fixed.
        post_feedback(
            running_system, {"store_id": "store-gangnam", "channel": "app", "text": "대기 시간이 길어요"}
        )

        def kept() -> dict[str, object] | None:
            shown = httpx.get(f"{notify}/v1/admin/webhooks/{hook_id}", headers=admin).json()
            return shown if shown["failed_deliveries"] >= 2 else None

        missed = wait_for(kept, timeout=30)
        assert (
            webhook_receiver.wait_for(1, path)
            and len([r for r in webhook_receiver.received if r.path == path]) == 1
        )

        # The board: how many, each by its description with notify's reason (in English).
        sign_in_console(page, running_system, CX_ADMIN)
        notice = page.locator("[data-testid=webhook-notice]")
        expect(notice).to_be_visible()
        expect(notice.locator("h2")).to_have_text(f"웹훅 엔드포인트 {count}개가 사용 중지되었습니다")
        mine = notice.locator(f"li[data-id='{hook_id}']")
        # notify's reason in the reader's words (it was its English, marked lang=en).
        expect(mine).to_have_text(f"{description}: 수신 측이 410 Gone(더 이상 받지 않음)으로 답함")
        expect(mine.locator(".why")).not_to_have_attribute("lang", "en")
        opener = notice.locator("button.open-webhooks")
        box = opener.bounding_box()
        assert box and box["height"] >= 24 and box["width"] >= 24, box
        assert violations(page) == [], "the board with its notice"
        page.screenshot(path=str(artifacts / "console-webhook-disabled-notice.png"), full_page=True)

        # Its button opens the Webhooks view, the focus on the table's heading.
        opener.click()
        expect(page.locator("#view-webhooks")).to_be_visible()
        expect(notice).to_be_hidden()
        expect(page.locator("#webhooks-title")).to_be_focused()
        row = page.locator(f"[data-testid=webhook-table] tr[data-id='{hook_id}']")
        expect(row).to_have_attribute("data-status", "disabled")
        status = row.locator("td.status")
        expect(status.locator(".state")).to_have_text("사용 중지됨")
        expect(status.locator(".why")).to_have_text("수신 측이 410 Gone(더 이상 받지 않음)으로 답함")
        # notify's other reason keeps the receiver's own error as it came.
        failing = page.evaluate(
            "r => VocBoard.webhookReason(r).textContent", "every attempt failed for 24 h: timed out after 5 s"
        )
        assert failing == "24시간 동안 모든 전송이 실패함: timed out after 5 s", failing
        # Which endpoint it is: its description above its URL.
        expect(row.locator("td.endpoint .description")).to_have_text(description)
        # When, with its zone (session.formatTime, as everywhere in the console).
        since = page.evaluate("at => VocConsole.formatTime(at, 'ko')", endpoint["disabled_at"])
        assert re.search(r"UTC|GMT", since), since
        expect(status.locator(".since")).to_have_text(f"{since}부터")
        # The events by their labels, the raw type beside; the deliveries alike, with the 410.
        expect(row.locator("td").nth(1)).to_have_text("피드백 접수 feedback.received")
        expect(row.locator("td").nth(1).locator("code")).to_have_text(["feedback.received"])
        row.locator("button.history").click()
        attempt = page.locator("[data-testid=deliveries] tbody tr[data-event='feedback.received']").first
        expect(attempt.locator("td").nth(1)).to_have_text("피드백 접수 feedback.received")
        expect(attempt.locator("td").nth(2)).to_have_text("410")
        expect(attempt.locator("td").first).to_have_text(re.compile(r"UTC|GMT"))
        assert violations(page) == [], "the Webhooks view with a disabled endpoint"
        page.screenshot(path=str(artifacts / "console-webhook-disabled-row.png"), full_page=True)

        # In English: the notice counts in words that agree with the number, the row says Disabled.
        page.goto(f"{running_system.url('feedback')}/dashboard#lang=en")
        page.reload()
        expect(notice.locator("h2")).to_have_text(
            "1 webhook endpoint is disabled" if count == 1 else f"{count} webhook endpoints are disabled"
        )
        page.click("#nav button[data-view=webhooks]")
        expect(status.locator(".state")).to_have_text("Disabled")
        expect(status.locator(".why")).to_have_text("the receiver answered 410 Gone (it takes no more)")
        enable = row.locator("button.enable")
        expect(enable).to_have_text("Enable again")
        box = enable.bounding_box()
        assert box and box["height"] >= 24 and box["width"] >= 24, box

        # Enabled again: active in words, no button, its Test focused, the board's notice gone.
        webhook_receiver.answer(path)  # the receiver is fixed
        enable.click()
        expect(row).to_have_attribute("data-status", "active")
        expect(status.locator(".state")).to_have_text("Active")
        expect(status.locator(".failed")).to_have_text(f"{missed['failed_deliveries']} failed")
        expect(row.locator("button.enable")).to_have_count(0)
        expect(row.locator("button.test")).to_be_focused()
        expect(page.locator("[data-testid=webhook-table] ~ .result")).to_have_text(
            f"Webhook {description} ({hook_id}) is enabled again."
        )
        shown = httpx.get(f"{notify}/v1/admin/webhooks/{hook_id}", headers=admin).json()
        assert (shown["status"], shown["disabled_reason"], shown["disabled_at"]) == ("active", None, None)
        enabled = httpx.get(f"{notify}/v1/audit", params={"action": "webhook.enable"}, headers=admin).json()
        assert any(e["actor"] == "staff:staff-cx" for e in enabled["entries"]), enabled
        # What failed goes again, once each, under the webhook-id it had, when asked (and confirmed).
        recover = row.locator("button.recover")
        expect(recover).to_have_text(f"Resend {missed['failed_deliveries']} failed")
        assert violations(page) == [], "the Webhooks view with failed deliveries to resend"
        page.screenshot(path=str(artifacts / "console-webhook-resend.png"), full_page=True)
        recover.click()
        expect(page.locator("[data-testid=confirm] .question")).to_contain_text(description)
        page.locator("[data-testid=confirm] button.ok").click()
        expect(page.locator("[data-testid=webhook-table] ~ .result")).to_have_text(
            f"{missed['failed_deliveries']} events of webhook {description} ({hook_id}) are sent again."
        )
        again = webhook_receiver.wait_for(missed["failed_deliveries"], path, ok=True)
        first = next(r for r in webhook_receiver.received if r.path == path)
        assert first.webhook_id in {r.webhook_id for r in again}  # the one refused with 410, same id
        expect(row.locator("button.recover")).to_have_count(0)
        recovered = httpx.get(
            f"{notify}/v1/audit", params={"action": "webhook.recover"}, headers=admin
        ).json()
        assert any(e["actor"] == "staff:staff-cx" for e in recovered["entries"]), recovered
        page.click("#nav button[data-view=board]")
        expect(page.locator("#board")).to_be_visible()
        expect(notice.locator(f"li[data-id='{hook_id}']")).to_have_count(0)

        # Another role does not ask notify's webhook list (it would be refused): no notice either.
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/v1/admin/webhooks" in r.url else None)
        page.click("#logout")
        expect(page.locator("#login")).to_be_visible()
        page.fill("#email", MANAGER)
        page.fill("#password", running_system.staff(MANAGER)["password"])
        page.click("#login button[type=submit]")
        expect(page.locator("body[data-loaded=true]")).to_have_count(1)
        expect(notice).to_be_hidden()
        page.wait_for_load_state("networkidle")
        assert asked == [], asked
    finally:
        httpx.delete(f"{notify}/v1/admin/webhooks/{hook_id}", headers=admin)


def suppressed(system: RunningSystem, address: str) -> str:
    """`address` suppressed in the running notify's database as a hard bounce leaves it (the
    bounce itself is tests/notify/test_mail_suppressions.py's); its key."""
    key = suppressions.address_key(address, secret=system.system.secrets["jwt_secret"])

    async def write() -> None:
        database = Database(system.database_url("notify"))
        try:
            async with database.transaction() as session:
                await suppressions.suppress(
                    session,
                    key=key,
                    recipient=mask_address(address),
                    customer_id=None,
                    feedback_id=str(uuid.uuid4()),
                    reason="5.1.1; smtp; 550 5.1.1 <***@***>: Recipient address rejected: User unknown",
                    now=time.time(),
                )
        finally:
            await database.dispose()

    run_async(write)  # off Playwright's own loop
    return key


def test_a_bounced_address_is_found_and_lifted(running_system: RunningSystem, console: Page) -> None:
    """The cx_admin finds an address notify no longer mails by the e-mail a customer gives on the
    phone (notify keeps only its hash), reads the server's answer and until when, and lifts it."""
    page = console
    address = f"gone.{uuid.uuid4().hex[:8]}@example.com"
    key = suppressed(running_system, address)
    sign_in_console(page, running_system, CX_ADMIN)
    page.click("#nav button[data-view=suppressions]")
    table = page.locator("[data-testid=suppression-table]")
    mine = table.locator(f"tr[data-key='{key}']")
    expect(mine).to_have_count(1)  # the latest, listed on arrival
    expect(mine.locator("td").first).to_have_text(mask_address(address))
    expect(mine.locator("td.reason")).to_have_attribute("lang", "en")
    form = page.locator("#suppression-form")
    form.locator("input[name=email]").fill(f" {address.upper()} ")
    form.locator("button[type=submit]").click()
    expect(form.locator(".result")).to_have_text(f"{address.upper()}: 메일을 보내지 않는 주소입니다.")
    expect(table.locator("tbody tr")).to_have_count(1)
    other = f"fine.{uuid.uuid4().hex[:8]}@example.com"
    form.locator("input[name=email]").fill(other)
    form.locator("button[type=submit]").click()
    expect(form.locator(".result")).to_have_text(f"{other}: 차단되지 않은 주소입니다. 후속 메일을 보냅니다.")
    expect(table.locator("tbody tr")).to_have_count(0)
    # Lifted, after the dialog asks: notify mails it again.
    form.locator("input[name=email]").fill(address)
    form.locator("button[type=submit]").click()
    mine.locator("button.lift").click()
    dialog = page.locator("[data-testid=confirm]")
    expect(dialog).to_contain_text(mask_address(address))
    dialog.locator("button.ok").click()
    expect(table.locator("xpath=..").locator(".result")).to_have_text(
        f"{mask_address(address)} 주소의 차단을 풀었습니다."
    )
    expect(mine).to_have_count(0)
    listed = httpx.post(
        f"{running_system.url('notify')}/v1/admin/mail-suppressions/search",
        json={"email": address},
        headers=running_system.admin_headers,
    )
    assert listed.status_code == 200 and listed.json()["suppressions"] == [], listed.text
