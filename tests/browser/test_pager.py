"""The staff app as a pager (#23), in a real headless Chromium at phone size with the real
service worker against the running system:

- the session survives a browser restart: sign in, let the access token expire, close the
  browser, open it again with the same profile; a push (CDP `ServiceWorker.deliverPushMessage`)
  still records "shown" and the notification's Acknowledge action acknowledges the alert (the
  worker refreshes the token itself); an action on an alert already resolved says so;
- an acknowledgement made offline (CDP network emulation) is queued, shown as pending sync and
  replayed when the connection returns; one for an alert someone else took meanwhile is
  explained and changes nothing;
- notifications are asked from an explained button, never at start; iOS Safari outside the Home
  Screen gets the install guide; blocked notifications are explained;
- a store manager sees how many of their staff cannot receive pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LEAD,
    NEEDS_CHROMIUM,
    PHONE_OPTIONS,
    go_offline,
    new_phone_context,
    post_feedback,
    sign_in,
    stored_session,
    wait_for,
)
from tests.conftest import RunningSystem
from tests.support.system import login
from voc_cli.push_emulator import PushEmulator

pytestmark = NEEDS_CHROMIUM

MANAGER = "seoyeon@gangnam.demo"  # store manager at store-gangnam
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def urgent_complaint(system: RunningSystem, text: str) -> str:
    """An anonymous food-safety complaint (always urgent); anonymous ones never merge."""
    return post_feedback(
        system, {"store_id": "store-gangnam", "channel": "kiosk", "text": text, "ratings": {"csat": 1}}
    )


def push_for(emulator: PushEmulator, phone: str, feedback_id: str) -> dict[str, Any]:
    """The decrypted payload the lead's phones got for the feedback's alert."""
    push = wait_for(
        lambda: next(
            (p for p in emulator.received(phone) if (p.json or {}).get("feedback_id") == feedback_id), None
        ),
        timeout=30,
    )
    payload: dict[str, Any] = push.json
    return payload


def deliver_push(page: Page, origin: str, payload: dict[str, Any]) -> None:
    """Hand a push to the origin's service worker as the browser's push service would."""
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
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


def worker_of(context: BrowserContext, page: Page) -> Any:
    """The app's service worker as Playwright reaches it (started if it is not running)."""
    return wait_for(
        lambda: next((w for w in context.service_workers if w.url.endswith("/sw.js")), None),
        timeout=15,
        page=page,
    )


NOTIFICATIONS = """tag => self.registration.getNotifications({tag}).then(ns => ns.map(n => ({
    title: n.title, body: n.body, tag: n.tag, requireInteraction: n.requireInteraction,
    actions: n.actions.map(a => a.action), data: n.data})))"""
# The user taps a button of the notification: the worker's notificationclick handler runs with it.
CLICK = """([tag, action]) => self.registration.getNotifications({tag}).then(ns => {
    self.dispatchEvent(new NotificationEvent('notificationclick', {notification: ns[0], action}));
    return ns.length; })"""


def deliveries(system: RunningSystem, alert_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{system.url('notify')}/v1/alerts/{alert_id}/deliveries", headers=login(system, MANAGER)
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["deliveries"]
    return rows


def alert(system: RunningSystem, alert_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = httpx.get(
        f"{system.url('notify')}/v1/alerts/{alert_id}", headers=login(system, MANAGER)
    ).json()
    return detail


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    return tmp_path / "chromium-profile"


def open_profile(browser: Browser, profile: Path, origin: str) -> BrowserContext:
    """A persistent phone browser (its IndexedDB and service worker survive a close)."""
    context = browser.browser_type.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        **PHONE_OPTIONS,
    )
    context.grant_permissions(["notifications"], origin=origin)
    context.set_default_timeout(15_000)
    return context


def test_after_a_restart_with_an_expired_token_the_worker_reports_and_acknowledges(
    browser: Browser,
    profile: Path,
    origin: str,
    running_system: RunningSystem,
    push_emulator: PushEmulator,
    emulated_phone: str,
    artifacts: Path,
) -> None:
    context = open_profile(browser, profile, origin)
    page = context.pages[0] if context.pages else context.new_page()
    sign_in(page, origin, running_system.staff(LEAD))
    expect(page.locator("body[data-sw-session=ok]")).to_be_attached()
    before = stored_session(page)
    # The access token runs out while the phone sits in a pocket.
    page.evaluate(
        "VocStore.kv.get('session')"
        ".then(s => VocStore.kv.set('session', {...s, access_expires_at: Date.now() / 1000 - 5}))"
    )
    context.close()

    feedback_id = urgent_complaint(running_system, "국에서 머리카락이 나왔어요. 위생이 너무 걱정됩니다.")
    payload = push_for(push_emulator, emulated_phone, feedback_id)
    assert payload["priority"] == "urgent"
    alert_id = payload["alert_id"]

    # The browser starts again; the app is not opened: only the worker can act.
    context = open_profile(browser, profile, origin)
    try:
        blank = context.pages[0] if context.pages else context.new_page()
        deliver_push(blank, origin, payload)
        worker = worker_of(context, blank)

        def shown_after(push: dict[str, Any], *, delivered: bool = True) -> Any:
            """The push's notifications once shown. CDP's deliverPushMessage can be dropped on a
            loaded box (right after the restart, before the worker is ready: once in eight CI
            runs; and once a later push, on PostgreSQL's run); a push service keeps a message
            until the browser takes it, so it is handed over once more."""
            if not delivered:
                deliver_push(blank, origin, push)
            try:
                return wait_for(
                    lambda: worker.evaluate(NOTIFICATIONS, push["alert_id"]), timeout=8, page=blank
                )
            except AssertionError:
                deliver_push(blank, origin, push)
                return wait_for(
                    lambda: worker.evaluate(NOTIFICATIONS, push["alert_id"]), timeout=15, page=blank
                )

        [note] = shown_after(payload)
        assert note["title"] == payload["title"] and note["actions"] == ["ack", "open"]
        assert note["requireInteraction"] is True  # urgent: stays until someone acts

        def lead_rows() -> list[dict[str, Any]]:
            return [d for d in deliveries(running_system, alert_id) if d["staff_id"] == "staff-gn-lead"]

        # The worker reported "shown" with a session it refreshed itself (its access token had
        # expired): the lead's deliveries of the alert are marked shown.
        assert wait_for(lambda: (rows := lead_rows()) and all(d["shown_at"] for d in rows), page=blank)
        after = worker.evaluate("VocStore.kv.get('session')")
        assert after["refresh_token"] != before["refresh_token"], "the worker refreshed the session"
        assert after["access_expires_at"] > before["access_expires_at"]

        # Acknowledge from the lock screen.
        assert worker.evaluate(CLICK, [alert_id, "ack"]) == 1
        acked = wait_for(
            lambda: (a := alert(running_system, alert_id))["status"] == "acknowledged" and a, page=blank
        )
        assert acked["acknowledged_by"] == "staff-gn-lead"
        assert wait_for(lambda: any(d["notification_ack_at"] for d in lead_rows()), page=blank)
        result = wait_for(
            lambda: [n for n in worker.evaluate(NOTIFICATIONS, alert_id) if n["data"].get("outcome")],
            page=blank,
        )
        assert result[0]["title"] == "확인 처리했습니다" and result[0]["actions"] == []

        # An action on an alert the manager already resolved: the notification says so.
        other_id = urgent_complaint(running_system, "샐러드에서 벌레가 나왔습니다. 식중독이 걱정돼요.")
        other = push_for(push_emulator, emulated_phone, other_id)
        done = httpx.post(
            f"{running_system.url('notify')}/v1/alerts/{other['alert_id']}/resolve",
            headers=login(running_system, MANAGER),
            json={"outcome": "resolved", "note": "handled at the counter"},
        )
        assert done.status_code == 200, done.text
        shown_after(other, delivered=False)
        assert worker.evaluate(CLICK, [other["alert_id"], "ack"]) == 1
        said = wait_for(
            lambda: [
                n for n in worker.evaluate(NOTIFICATIONS, other["alert_id"]) if n["data"].get("outcome")
            ],
            page=blank,
        )
        assert said[0]["title"] == "이미 해결된 알림입니다"
        assert said[0]["data"]["outcome"] == "already_resolved"
        assert alert(running_system, other["alert_id"])["resolved_by"] == "staff-gn-mgr"
    finally:
        context.close()


@pytest.fixture
def lead_page(browser: Browser, origin: str, running_system: RunningSystem) -> Iterator[Page]:
    context = new_phone_context(browser, origin)
    page = context.new_page()
    sign_in(page, origin, running_system.staff(LEAD))
    expect(page.locator("body[data-stream=open]")).to_be_attached()
    yield page
    context.close()


def test_an_offline_ack_is_queued_then_replayed(
    lead_page: Page, running_system: RunningSystem, artifacts: Path
) -> None:
    page = lead_page
    feedback_id = urgent_complaint(running_system, "음식에서 플라스틱 조각이 나왔어요.")
    row = page.locator(f'a.alert-row[data-feedback-id="{feedback_id}"]')
    expect(row).to_be_visible()
    alert_id = row.get_attribute("data-alert-id")
    assert alert_id
    row.click()
    expect(page.locator(f'#detail[data-alert-id="{alert_id}"]')).to_be_visible()

    go_offline(page, True)
    page.click("#ack-btn")
    expect(page.locator("#pending-sync")).to_be_visible()
    expect(page.locator(".detail-head .badge-pending")).to_have_text("동기화 대기")
    expect(page.locator("#flash")).to_contain_text("오프라인")
    page.screenshot(path=artifacts / "staff-app-8-pending-sync.png")
    assert alert(running_system, alert_id)["status"] == "open", "nothing reached the server"
    # The inbox (saved on the phone) shows it too.
    page.click("a.back")
    expect(row.locator(".badge-pending")).to_be_visible()

    go_offline(page, False)
    acked = wait_for(
        lambda: (a := alert(running_system, alert_id))["status"] == "acknowledged" and a,
        timeout=30,
        page=page,
    )
    assert acked["acknowledged_by"] == "staff-gn-lead"
    expect(row.locator(".badge-pending")).to_have_count(0, timeout=20_000)
    expect(row.locator(".badge")).to_have_text("확인됨")
    expect(page.locator("#sync-note")).to_contain_text("오프라인에서 처리한 내용을 보냈습니다")

    # A resolve made offline waits the same way, with its outcome and note.
    row.click()
    expect(page.locator(f'#detail[data-alert-id="{alert_id}"] #resolve-form')).to_be_visible()
    go_offline(page, True)
    page.select_option("#outcome", "compensated")
    page.fill("#note", "음료 쿠폰 드림 (오프라인)")
    page.click("#resolve-btn")
    expect(page.locator("#pending-sync")).to_contain_text("해결")
    expect(page.locator("#flash")).to_contain_text("오프라인")
    assert alert(running_system, alert_id)["status"] == "acknowledged", "nothing reached the server"
    go_offline(page, False)
    resolved = wait_for(
        lambda: (a := alert(running_system, alert_id))["status"] == "resolved" and a, timeout=30, page=page
    )
    assert (resolved["resolved_by"], resolved["outcome"], resolved["note"]) == (
        "staff-gn-lead",
        "compensated",
        "음료 쿠폰 드림 (오프라인)",
    )
    expect(page.locator("#pending-sync")).to_have_count(0, timeout=20_000)
    page.click("a.back")

    # Offline again; meanwhile the store manager takes the next alert.
    taken_id = urgent_complaint(running_system, "튀김에서 이상한 냄새가 나고 배가 아파요.")
    taken = page.locator(f'a.alert-row[data-feedback-id="{taken_id}"]')
    expect(taken).to_be_visible()
    taken_alert = taken.get_attribute("data-alert-id")
    assert taken_alert
    taken.click()
    expect(page.locator(f'#detail[data-alert-id="{taken_alert}"]')).to_be_visible()
    go_offline(page, True)
    page.click("#ack-btn")
    expect(page.locator("#pending-sync")).to_be_visible()
    manager = httpx.post(
        f"{running_system.url('notify')}/v1/alerts/{taken_alert}/ack", headers=login(running_system, MANAGER)
    )
    assert manager.status_code == 200
    go_offline(page, False)
    note = page.locator("#sync-note")
    expect(note).to_contain_text("먼저 처리한 알림입니다", timeout=30_000)
    expect(note).to_contain_text("반영되지 않았습니다")
    page.screenshot(path=artifacts / "staff-app-9-replay-conflict.png")
    assert alert(running_system, taken_alert)["acknowledged_by"] == "staff-gn-mgr", "nothing changed"
    assert page.evaluate("VocStore.queue.all()") == []


def test_notifications_are_asked_from_a_button_with_an_explanation(
    browser: Browser, origin: str, running_system: RunningSystem, artifacts: Path
) -> None:
    context = new_phone_context(browser, origin, notifications=False)
    try:
        page = context.new_page()
        sign_in(page, origin, running_system.staff(LEAD))
        ask = page.locator("#push-ask")
        expect(ask).to_be_visible()
        expect(page.locator("#push-why")).to_contain_text("잠금 화면")
        assert page.evaluate("Notification.permission") == "default", "nothing was asked at start"
        expect(page.locator("body[data-reported='default/none']")).to_be_attached()
        page.screenshot(path=artifacts / "staff-app-10-ask-permission.png")
        context.grant_permissions(["notifications"], origin=origin)  # what the user's "Allow" does
        page.click("#enable-push")
        # Headless Chromium has no vendor push service: the subscription itself fails, and the
        # app says so; the permission and the attempt are reported for the fleet.
        expect(page.locator("body[data-reported^='granted/']")).to_be_attached(timeout=30_000)
        expect(ask).to_have_count(0)
    finally:
        context.close()


def test_blocked_notifications_are_explained(
    browser: Browser, origin: str, running_system: RunningSystem
) -> None:
    context = new_phone_context(browser, origin, notifications=False)
    try:
        # The browser's "Block" (Playwright cannot deny a permission; the page sees what it would).
        context.add_init_script("Object.defineProperty(Notification, 'permission', {get: () => 'denied'})")
        page = context.new_page()
        sign_in(page, origin, running_system.staff(LEAD))
        expect(page.locator("#push-denied")).to_contain_text("설정")
        expect(page.locator("#push-note")).to_be_hidden()  # said once on the inbox, by the card
        expect(page.locator("#enable-push")).to_have_count(0)
        expect(page.locator("body[data-push=denied]")).to_be_attached()
        expect(page.locator("body[data-reported='denied/none']")).to_be_attached()
    finally:
        context.close()


def test_ios_safari_outside_the_home_screen_gets_the_install_guide(
    browser: Browser, origin: str, running_system: RunningSystem, artifacts: Path
) -> None:
    context = new_phone_context(browser, origin, notifications=False, user_agent=IPHONE_SAFARI)
    try:
        page = context.new_page()
        sign_in(page, origin, running_system.staff(LEAD))
        guide = page.locator("#ios-install")
        expect(guide).to_be_visible()
        expect(guide.locator("h2")).to_have_text("홈 화면에 추가해야 알림을 받을 수 있습니다")
        expect(guide.locator("li")).to_have_count(3)
        expect(guide.locator("li").nth(1)).to_contain_text("홈 화면에 추가")
        expect(page.locator("#enable-push")).to_have_count(0)
        page.screenshot(path=artifacts / "staff-app-11-ios-install.png")
    finally:
        context.close()


def test_a_store_manager_sees_who_cannot_receive_pages(
    browser: Browser, origin: str, running_system: RunningSystem, artifacts: Path
) -> None:
    headers = login(running_system, MANAGER)
    notify = running_system.url("notify")
    # The app speaks the directory's language of whoever signs in, which the console's language
    # switch also writes: another test of the session may have left this manager's in English.
    assert (
        httpx.put(f"{notify}/v1/auth/language", json={"language": "ko"}, headers=headers).status_code == 204
    )
    fleet = httpx.get(f"{notify}/v1/fleet", headers=headers).json()
    assert fleet["staff_count"] >= 2
    context = new_phone_context(browser, origin)
    try:
        page = context.new_page()
        sign_in(page, origin, running_system.staff(MANAGER))
        card = page.locator("#fleet-summary")
        expect(card).to_contain_text(f"직원 {fleet['staff_count']}명")
        card.click()
        expect(page.locator("body[data-view=fleet]")).to_be_attached()
        expect(page.locator("#fleet-list li.fleet-row")).to_have_count(fleet["staff_count"])
        page.screenshot(path=artifacts / "staff-app-12-fleet.png", full_page=True)
    finally:
        context.close()


def test_logout_and_deactivation_end_the_phones_session(
    browser: Browser, origin: str, running_system: RunningSystem, push_emulator: PushEmulator
) -> None:
    notify = running_system.url("notify")
    person = {
        "id": "pager-temp",
        "name": "Pager Temp",
        "email": "pager-temp@gangnam.demo",
        "password": "pager-temp-password-1",
        "role": "staff",
        "store_ids": ["store-gangnam"],
    }
    made = httpx.put(f"{notify}/v1/admin/staff", json=[person], headers=running_system.admin_headers)
    assert made.status_code == 200, made.text
    context = new_phone_context(browser, origin)
    try:
        page = context.new_page()
        sign_in(page, origin, person)
        first = stored_session(page)
        # This phone's push subscription (headless Chromium cannot make one: registered for it).
        device = httpx.post(
            f"{notify}/v1/devices",
            json=push_emulator.new_subscription(label="pager-temp phone"),
            headers={"Authorization": f"Bearer {first['access_token']}"},
        )
        assert device.status_code == 201, device.text
        page.evaluate("id => VocStore.kv.set('device_id', id)", device.json()["id"])
        page.click("#logout")
        expect(page.locator("#login-form")).to_be_visible()
        wait_for(lambda: stored_session(page) is None, page=page)
        # The server ended it too: the refresh token the phone had is refused.
        refused = httpx.post(f"{notify}/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert refused.status_code == 401
        # …and the phone no longer gets pages for them: its device is gone.
        fleet = httpx.get(f"{notify}/v1/fleet", headers=login(running_system, MANAGER)).json()
        assert next(p for p in fleet["staff"] if p["staff_id"] == "pager-temp")["devices"] == []

        sign_in(page, origin, person)
        page.evaluate(
            "VocStore.kv.get('session')"
            ".then(s => VocStore.kv.set('session', {...s, access_expires_at: Date.now() / 1000 - 5}))"
        )
        off = httpx.post(
            f"{notify}/v1/admin/staff/pager-temp/deactivate", headers=running_system.admin_headers
        )
        assert off.status_code == 204
        page.reload()  # the next call needs a refresh, which the server refuses
        expect(page.locator("#login-error")).to_contain_text("세션이 끝났습니다")
        assert stored_session(page) is None
    finally:
        context.close()


def test_a_rotated_subscription_is_registered_again_by_the_worker(
    lead_page: Page, origin: str, running_system: RunningSystem, push_emulator: PushEmulator
) -> None:
    """The push service rotates the subscription (`pushsubscriptionchange` with the new one): the
    worker registers it under the stored session and the next page reaches it. When the browser
    cannot subscribe again, the app says the subscription expired. (Headless Chromium has no
    push service to rotate one: the event is dispatched in the real worker with the push
    emulator's subscription as the new one.)"""
    page = lead_page
    # The app's own push set-up fails here (no push service) and says so in #push-note: let it
    # settle first, or on a slow runner its note lands after, and over, the worker's.
    expect(page.locator("body[data-push]")).to_be_attached(timeout=60_000)
    worker = worker_of(page.context, page)
    rotated = push_emulator.new_subscription(label=f"{LEAD} rotated")
    worker.evaluate(
        """sub => {
            const event = new ExtendableEvent('pushsubscriptionchange');
            Object.defineProperty(event, 'newSubscription', {value: {toJSON: () => sub}});
            self.dispatchEvent(event);
        }""",
        rotated,
    )
    assert wait_for(lambda: worker.evaluate("VocStore.kv.get('push_state')") == "renewed", page=page)
    device_id = worker.evaluate("VocStore.kv.get('device_id')")
    assert device_id
    fleet = httpx.get(
        f"{running_system.url('notify')}/v1/fleet", headers=login(running_system, MANAGER)
    ).json()
    lead = next(p for p in fleet["staff"] if p["staff_id"] == "staff-gn-lead")
    assert device_id in {d["id"] for d in lead["devices"]}
    expect(page.locator("#push-note")).to_contain_text("다시 등록했습니다")
    # The next page goes to the new subscription.
    feedback_id = urgent_complaint(running_system, "김밥에서 상한 냄새가 났어요. 배탈이 났습니다.")
    assert (
        push_for(push_emulator, push_emulator.subscription_id(rotated), feedback_id)["priority"] == "urgent"
    )

    # Rotated without a new subscription, and the browser cannot make one: explained in the app.
    worker.evaluate("() => self.dispatchEvent(new ExtendableEvent('pushsubscriptionchange'))")
    assert wait_for(lambda: worker.evaluate("VocStore.kv.get('push_state')") == "expired", page=page)
    expect(page.locator("#push-note")).to_contain_text("구독이 만료되었습니다")


def test_open_from_the_notification_and_a_replay_for_an_alert_no_longer_mine(
    lead_page: Page, running_system: RunningSystem
) -> None:
    """The notification's Open button brings the app to the alert; an acknowledgement queued
    offline for an alert this staff member can no longer see (their stores changed, or it is
    gone: the server answers both 404 alike) is explained and dropped, nothing changed."""
    page = lead_page
    feedback_id = urgent_complaint(running_system, "수프에서 유리 조각이 나왔어요. 너무 위험합니다.")
    row = page.locator(f'a.alert-row[data-feedback-id="{feedback_id}"]')
    expect(row).to_be_visible()
    alert_id = row.get_attribute("data-alert-id")
    assert alert_id
    worker = worker_of(page.context, page)
    # The registration may be between workers just after the previous test's subscription change.
    assert wait_for(lambda: worker.evaluate("() => !!self.registration.active"), page=page)
    worker.evaluate(
        "id => self.registration.showNotification('Frontline VoC', {tag: id, data: {alert_id: id}})",
        alert_id,
    )
    assert worker.evaluate(CLICK, [alert_id, "open"]) == 1
    expect(page.locator(f'#detail[data-alert-id="{alert_id}"]')).to_be_visible()
    assert alert(running_system, alert_id)["status"] == "open", "Open only opens"

    elsewhere = "0190aaaa-0000-7000-8000-000000000000"  # not (or no longer) visible to the lead
    page.evaluate("id => VocStore.queue.add({kind: 'ack', alert_id: id})", elsewhere)
    page.evaluate("window.dispatchEvent(new Event('online'))")  # the connection is back
    expect(page.locator("#sync-note")).to_contain_text("더 이상 나에게 배정되어 있지 않습니다")
    expect(page.locator("#sync-note")).to_contain_text("반영되지 않았습니다")
    assert wait_for(lambda: page.evaluate("VocStore.queue.all()") == [], page=page)
    assert alert(running_system, alert_id)["status"] == "open"
