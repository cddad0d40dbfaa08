"""The manager console (#20 §2) in headless Chromium on the demo data: a Gangnam store manager
signs in with their own credentials and sees only Gangnam (and no Admin sections; another store is
refused); a cx_admin runs the directory, a CSV import with a bad row, an API key's life, playbooks
(an error by file/line/field, a valid one, publish, roll back) and a webhook tested against a
loopback receiver; signing out revokes the token on every service. The console talks to notify
and actions from another origin: no CSP violation, and every change is audited as the staff
member."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.actions.conftest import playbook_yaml
from tests.browser.conftest import (
    NEEDS_CHROMIUM,
    console_token,
    post_feedback,
    sign_in_console,
    staff_language,
    watch_page_errors,
)
from tests.browser.conftest import wait_for as page_wait_for
from tests.conftest import RunningSystem
from tests.support.webhook_receiver import WebhookReceiver
from voc_cli import demo
from voc_notify.settings import Settings as NotifySettings

pytestmark = NEEDS_CHROMIUM
MANAGER = "seoyeon@gangnam.demo"  # store_manager of store-gangnam
CX_ADMIN = "cx@hq.demo"
WIDE = {"width": 1280, "height": 1400}
ACCESS_TOKEN_TTL = int(NotifySettings.model_fields["token_ttl_seconds"].default)  # the test system's


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audited(system: RunningSystem, service: str, action: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{system.url(service)}/v1/audit", params={"action": action}, headers=system.admin_headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def test_a_store_manager_sees_only_their_store_and_signing_out_revokes(
    running_system: RunningSystem, browser: Browser, artifacts: Path
) -> None:
    gangnam_case = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": "국이 식어서 나왔어요",
            "ratings": {"csat": 1},
        },
    )
    hongdae_key = running_system.store("store-hongdae")["api_key"]
    hongdae = httpx.post(
        f"{running_system.url('feedback')}/v1/feedback",
        json={
            "store_id": "store-hongdae",
            "channel": "app",
            "text": "화장실이 더러워요",
            "ratings": {"csat": 1},
        },
        headers=bearer(hongdae_key),
    )
    assert hongdae.status_code == 202, hongdae.text
    page = browser.new_page(viewport=WIDE, locale="en-US")
    page.clock.install()  # the page's own clock, moved forward below to reach its refresh timer
    errors = watch_page_errors(page)
    try:
        sign_in_console(page, running_system, MANAGER, lang="en")
        assert "token" not in page.url
        # Who, role and scope in the header; no Admin sections for a store manager.
        expect(page.locator("[data-testid=who-role]")).to_have_text("Store manager")
        expect(page.locator("[data-testid=who-scope]")).to_have_attribute("data-stores", "store-gangnam")
        expect(page.locator("#who-name")).to_have_text(running_system.staff(MANAGER)["name"])
        expect(page.locator("[data-testid=admin-nav]")).to_be_hidden()
        expect(page.locator("[data-testid=manager-nav]")).to_be_visible()  # their staff's shifts
        expect(page.locator("#admin")).to_be_hidden()

        # Every view holds Gangnam only: the store picker, the per-store chart, the open cases.
        stores_offered = page.locator("#store option").evaluate_all("os => os.map(o => o.value)")
        assert stores_offered == ["", "store-gangnam"]
        charted = page.locator("[data-testid=stores-chart] rect[data-store]").evaluate_all(
            "rs => [...new Set(rs.map(r => r.dataset.store))]"
        )
        assert charted == ["store-gangnam"]
        expect(page.locator(f"#cases tr[data-id='{gangnam_case}']")).to_have_count(1, timeout=20_000)
        expect(page.locator(f"#cases tr[data-id='{hongdae.json()['id']}']")).to_have_count(0)

        # The console's own token: another store is refused (403), the directory is Gangnam's.
        token = console_token(page)
        feedback = running_system.url("feedback")
        other = httpx.get(
            f"{feedback}/v1/analytics", params={"store_id": "store-hongdae"}, headers=bearer(token)
        )
        assert other.status_code == 403, other.text
        staff = httpx.get(f"{running_system.url('notify')}/v1/admin/staff", headers=bearer(token))
        assert staff.status_code == 200, staff.text
        # Gangnam's people only (other tests on the shared system may have added some there).
        directory = staff.json()["staff"]
        assert {"staff-gn-1", "staff-gn-lead", "staff-gn-mgr"} <= {s["id"] for s in directory}
        assert all(s["store_ids"] == ["store-gangnam"] for s in directory), directory
        keys = httpx.get(f"{feedback}/v1/admin/api-keys", headers=bearer(token))
        assert keys.status_code == 403
        page.screenshot(path=str(artifacts / "console-store-manager.png"), full_page=True)

        # A minute before the access token expires (1 h here) the page refreshes by itself: both
        # tokens rotate and the board stays; a reload of the tab resumes the session without the
        # password.
        page.clock.fast_forward((ACCESS_TOKEN_TTL - 55) * 1000)
        page_wait_for(lambda: console_token(page) != token, timeout=10, page=page)
        renewed = console_token(page)
        page.reload()
        expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=15_000)
        expect(page.locator("#login")).to_be_hidden()
        assert console_token(page) == renewed

        # (c) Signing out revokes: the form is back, the tab forgot the tokens, and the access
        # token stops working on every service (within the revocation bound).
        page.click("#logout")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#board")).to_be_hidden()
        assert page.evaluate("sessionStorage.length") == 0
        for service, path in (("feedback", "/v1/analytics"), ("notify", "/v1/admin/stores")):
            page_wait_for(
                lambda s=service, p=path: (
                    httpx.get(f"{running_system.url(s)}{p}", headers=bearer(token)).status_code == 401
                ),
                timeout=15,
                page=page,
            )
        # A shift lead has no dashboard: told so, not shown an empty or broken board.
        refusals: list[str] = []
        page.on("response", lambda r: refusals.append(r.url) if r.status == 403 else None)
        page.fill("#email", "minji@gangnam.demo")
        page.fill("#password", running_system.staff("minji@gangnam.demo")["password"])
        page.click("#login button[type=submit]")
        expect(page.locator("#no-access")).to_be_visible()
        expect(page.locator("[data-testid=who-role]")).to_have_text("Shift lead")
        expect(page.locator("[data-testid=manager-nav]")).to_be_hidden()
        expect(page.locator("#board")).to_be_hidden()
        # ... with the way to their own app, and without pickers or a live badge for nothing; the
        # 2 s poll does not ask again what was refused (it did, 20 refusals every 10 s).
        expect(page.locator("#staff-app-link")).to_have_attribute("href", f"{running_system.url('notify')}/")
        expect(page.locator("#store")).to_be_hidden()
        expect(page.locator("#live")).to_be_hidden()
        assert_not_asked_again(page, refusals)
        assert not errors, errors
    finally:
        page.close()


def assert_not_asked_again(page: Page, refusals: list[str]) -> None:
    """Five of the console's 2 s polls on the page's clock bring no new refusal (it asked again
    each time what it had been refused)."""
    asked = len(refusals)
    page.clock.run_for(10_000)
    page.wait_for_timeout(500)
    assert len(refusals) == asked, refusals[asked:]


def confirm(page: Page) -> None:
    """Confirm the destructive action the console asks about (its in-page dialog)."""
    dialog = page.locator("[data-testid=confirm]")
    expect(dialog).to_be_visible()
    dialog.locator("button.ok").click()
    expect(dialog).to_be_hidden()


def upload(page: Page, selector: str, name: str, text: str, mime: str) -> None:
    page.set_input_files(selector, files=[{"name": name, "mimeType": mime, "buffer": text.encode()}])


def test_a_cx_admin_runs_the_directory_keys_playbooks_and_webhooks(
    running_system: RunningSystem, browser: Browser, webhook_receiver: WebhookReceiver, artifacts: Path
) -> None:
    page = browser.new_page(viewport=WIDE, locale="en-US")
    errors = watch_page_errors(page)
    feedback, actions = running_system.url("feedback"), running_system.url("actions")
    try:
        sign_in_console(page, running_system, CX_ADMIN, lang="en")
        expect(page.locator("[data-testid=who-role]")).to_have_text("CX admin")
        expect(page.locator("[data-testid=who-scope]")).to_have_attribute("data-stores", "*")
        expect(page.locator("[data-testid=admin-nav]")).to_be_visible()

        # Directory: a new staff member through the form.
        page.click(".admin-nav button[data-view=directory]")
        expect(page.locator("[data-testid=staff-table] tr[data-id=staff-gn-mgr]")).to_have_count(1)
        form = page.locator("#staff-form")
        form.locator("[name=id]").fill("staff-console-1")
        form.locator("[name=name]").fill("콘솔 신입")
        form.locator("[name=email]").fill("newbie@console.demo")
        form.locator("[name=password]").fill("console-pass-1")
        form.locator("[name=role]").select_option("shift_lead")
        # Their stores from the directory by name, in the API keys' picker (one component).
        stores = page.locator("[data-testid=staff-stores]")
        expect(stores).to_have_class(re.compile(r"\bstore-picker\b"))
        expect(page.locator("[data-testid=key-stores]")).to_have_class(re.compile(r"\bstore-picker\b"))
        expect(stores.locator("legend")).to_have_text("Stores")
        gangnam = stores.locator("label", has=page.locator("input[value=store-gangnam]"))
        expect(gangnam).to_have_text("강남역점 (store-gangnam)")
        gangnam.locator("input").check()
        form.locator("button[type=submit]").click()
        expect(form.locator(".result")).to_have_text("Saved.")
        expect(stores.locator("input:checked")).to_have_count(0)  # the form is reset for the next one
        expect(page.locator("[data-testid=staff-table] tr[data-id=staff-console-1]")).to_have_count(1)
        # Edited without a password (#20): name, role, stores, language; theirs still signs in.
        page.locator("[data-testid=staff-table] tr[data-id=staff-console-1] button.edit").click()
        expect(form.locator("[name=password]")).to_have_value("")
        expect(stores.locator("input:checked")).to_have_count(1)  # theirs, ticked
        expect(stores.locator("input[value=store-gangnam]")).to_be_checked()
        form.locator("[name=name]").fill("콘솔 신입 (수정)")
        form.locator("[name=role]").select_option("staff")
        stores.locator("input[value=store-hongdae]").check()
        form.locator("[name=language]").select_option("en")
        form.locator("button[type=submit]").click()
        expect(form.locator(".result")).to_have_text("Saved.")
        edited = page.locator("[data-testid=staff-table] tr[data-id=staff-console-1]")
        expect(edited).to_contain_text("콘솔 신입 (수정)")
        listed = httpx.get(
            f"{running_system.url('notify')}/v1/admin/staff", headers=running_system.admin_headers
        )
        member = next(m for m in listed.json()["staff"] if m["id"] == "staff-console-1")
        assert (member["role"], member["store_ids"], member["language"]) == (
            "staff", ["store-gangnam", "store-hongdae"], "en"
        )  # fmt: skip
        still = httpx.post(
            f"{running_system.url('notify')}/v1/auth/login",
            json={"email": "newbie@console.demo", "password": "console-pass-1"},
        )
        assert still.status_code == 200, still.text
        # Deactivating asks first: Cancel changes nothing, Confirm deactivates.
        edited.locator("button.toggle").click()
        dialog = page.locator("[data-testid=confirm]")
        expect(dialog).to_be_visible()
        expect(dialog).to_have_attribute("role", "alertdialog")
        expect(dialog.locator(".question")).to_contain_text("staff-console-1")
        expect(dialog.locator("button.cancel")).to_be_focused()
        dialog.locator("button.cancel").click()
        expect(dialog).to_be_hidden()
        expect(edited).to_have_attribute("data-active", "true")
        edited.locator("button.toggle").click()
        page.keyboard.press("Escape")  # Escape is Cancel too
        expect(dialog).to_be_hidden()
        expect(edited).to_have_attribute("data-active", "true")
        edited.locator("button.toggle").click()
        dialog.locator("button.ok").click()
        expect(edited).to_have_attribute("data-active", "false")
        edited.locator("button.toggle").click()  # activating again asks nothing
        expect(edited).to_have_attribute("data-active", "true")
        expect(dialog).to_be_hidden()
        page.locator(
            "[data-testid=staff-table] tr[data-id=staff-console-1] button", has_text="Shifts"
        ).click()
        # The card names the member and the clock their shifts keep (the store's time zone).
        expect(page.locator("[data-testid=shifts] .for")).to_contain_text("(staff-console-1) · times in ")
        page.locator("#shift-form [name=starts]").fill("18:00")
        page.locator("#shift-form [name=ends]").fill("09:00")
        page.locator("#shift-form button[type=submit]").click()
        # The first shift ends "paged at any hour": asked first (UX review), then saved and said.
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("paged only during their shifts")
        dialog.locator("button.ok").click()
        expect(page.locator("[data-testid=shifts] tbody tr")).to_have_count(1)
        expect(page.locator("[data-testid=shifts] tbody tr")).to_contain_text("09:00 (next day)")
        expect(page.locator("[data-testid=shifts] .result")).to_have_text("Saved.")

        # Controls without a visible label are named for screen readers (apps review).
        for control in (
            "#import-form [name=file]",
            "#store-form [name=timezone]",
            "#shift-form [name=starts]",
        ):
            expect(page.locator(control)).to_have_attribute("aria-label", re.compile(r"\S"))
        # CSV import with one bad row (line 3): refused whole, the line shown, nothing imported.
        csv_text = (
            "id,name,email,password,role,store_ids\n"
            "staff-csv-ok,좋은 줄,ok@csv.demo,csv-pass-123,staff,store-gangnam\n"
            "staff-csv-bad,나쁜 줄,bad@csv.demo,csv-pass-123,wizard,store-gangnam\n"
        )
        upload(page, "#import-form [name=file]", "staff.csv", csv_text, "text/csv")
        page.click("#import-form button[type=submit]")
        refused = page.locator("[data-testid=import-form] table.refused tr[data-line='3']")
        expect(refused).to_have_count(1)
        expect(refused).to_contain_text("role")
        expect(page.locator("[data-testid=staff-table] tr[data-id=staff-csv-ok]")).to_have_count(0)
        page.screenshot(path=str(artifacts / "console-directory.png"), full_page=True)

        # API keys: created (secret shown once, and it works), rotated with grace, revoked.
        page.click("#nav button[data-view=keys]")
        page.fill("#key-form [name=name]", "console kiosk")
        page.check("#key-form [name=store_ids][value=store-gangnam]")
        page.click("#key-form button[type=submit]")
        secret_box = page.locator("[data-testid=key-secret] .secret")
        expect(secret_box).not_to_be_empty()
        first_secret = secret_box.inner_text()
        rows = page.locator("[data-testid=key-table] tr", has_text="console kiosk")
        expect(rows).to_have_count(1)
        rows.locator("button.rotate").click()
        confirm(page)
        expect(secret_box).not_to_have_text(first_secret)
        second_secret = secret_box.inner_text()
        in_grace = rows.and_(page.locator("[data-state=expires]"))
        expect(in_grace).to_have_count(1)  # the old one, in grace
        # Until when, with its zone (session.formatTime, as everywhere in the console).
        listed_keys = httpx.get(f"{feedback}/v1/admin/api-keys", headers=running_system.admin_headers).json()
        [expiring] = [k for k in listed_keys if k["name"] == "console kiosk" and k["expires_at"]]
        until = page.evaluate("at => VocConsole.formatTime(at, 'en')", expiring["expires_at"])
        expect(in_grace.locator("td").nth(4)).to_have_text(f"Expires {until}")
        active = rows.and_(page.locator("[data-state=active]"))
        expect(active).to_have_count(1)
        active.locator("button.revoke").click()
        confirm(page)
        expect(rows.and_(page.locator("[data-state=revoked]"))).to_have_count(1)
        intake = httpx.post(
            f"{feedback}/v1/feedback",
            json={"store_id": "store-gangnam", "channel": "kiosk", "text": "test"},
            headers=bearer(second_secret),
        )
        assert intake.status_code == 401, intake.text

        # Playbooks: a bad file shows file/line/field; a valid one validates, publishes, then a
        # second version, and rolling back makes the first version's content active again.
        pid = f"console-pb-{uuid.uuid4().hex[:8]}"
        page.click("#nav button[data-view=playbooks]")
        bad = playbook_yaml(pid).replace("version: 1\n", "version: one\n")
        upload(page, "#playbook-form [name=files]", f"{pid}.yaml", bad, "application/yaml")
        page.click("#playbook-form button[type=submit]")
        problem = page.locator("[data-testid=playbook-problems] tr[data-field=version]")
        expect(problem).to_have_count(1)
        expect(problem).to_have_attribute("data-file", f"{pid}.yaml")
        expect(problem).to_have_attribute("data-line", "2")
        expect(page.locator("#playbook-form button.publish")).to_be_disabled()
        page.screenshot(path=str(artifacts / "console-playbook-error.png"), full_page=True)
        for version in (1, 2):
            text = playbook_yaml(pid, version=version, title_en=f"Console {version}")
            upload(page, "#playbook-form [name=files]", f"{pid}.yaml", text, "application/yaml")
            page.click("#playbook-form button[type=submit]")
            expect(page.locator("#playbook-form .result")).to_contain_text(f"{pid} v{version}")
            expect(page.locator("[data-testid=playbook-problems]")).to_be_hidden()
            page.click("#playbook-form button.publish")
            expect(page.locator("#playbook-form .result")).to_contain_text("Published")
            expect(page.locator(f"[data-testid=playbook-table] tr[data-id='{pid}']")).to_have_attribute(
                "data-version", str(version)
            )
        page.locator(f"[data-testid=playbook-table] tr[data-id='{pid}'] button.rollback").click()
        # The question names the playbook by its title, its id beside it.
        expect(page.locator("[data-testid=confirm] .question")).to_contain_text(f"Console 2 v2 ({pid})")
        confirm(page)
        expect(page.locator(f"[data-testid=playbook-table] tr[data-id='{pid}']")).to_have_attribute(
            "data-version", "3"
        )
        admin = {"Authorization": f"Bearer {running_system.system.admin_token}"}
        served = httpx.get(f"{actions}/v1/playbooks/{pid}", headers=admin).json()
        assert served["version"] == 3 and served["title"]["en"] == "Console 1 v1"

        # Webhooks: created (secret once), a test reaches the loopback receiver signed with it,
        # the delivery is listed, the secret rotated, the endpoint deleted.
        page.click("#nav button[data-view=webhooks]")
        page.fill("#webhook-form [name=url]", webhook_receiver.url("/console"))
        page.uncheck("#webhook-form [name=events][value='*']")
        page.check("#webhook-form [name=events][value='alert.created']")
        page.click("#webhook-form button[type=submit]")
        hook_secret = page.locator("[data-testid=webhook-secret] .secret")
        expect(hook_secret).not_to_be_empty()
        secret = hook_secret.inner_text()
        hook = page.locator("[data-testid=webhook-table] tr", has_text=webhook_receiver.url("/console"))
        expect(hook).to_have_count(1)
        hook_id = hook.get_attribute("data-id")
        # The secret says whose it is, and the form said it was made.
        owner = f"{webhook_receiver.url('/console')} ({hook_id})"
        expect(page.locator("[data-testid=webhook-secret] .for")).to_have_text(f"For: {owner}")
        expect(page.locator("#webhook-form .result")).to_contain_text(f"Webhook {owner} is created.")
        # On a phone an endpoint is a block: its status and buttons are on screen, not 1,600 px right.
        size = page.viewport_size
        page.set_viewport_size({"width": 390, "height": 844})
        for button in ("test", "rotate", "history", "delete"):
            box = hook.locator(f"button.{button}").bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (button, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(artifacts / "console-webhooks-phone.png"), full_page=True)
        assert size is not None
        page.set_viewport_size(size)
        # Its events and state in words, the raw type beside.
        expect(hook.locator("td").nth(1)).to_have_text("Alert created alert.created")
        expect(hook.locator("td").nth(1).locator("code")).to_have_text("alert.created")
        expect(hook.locator("td.status")).to_have_text("Active")
        hook.locator("button.test").click()
        expect(page.locator("[data-testid=webhook-table] ~ .result")).to_have_attribute("data-ok", "true")
        webhook_receiver.wait_for(1, path="/console")
        assert [m["type"] for m in webhook_receiver.verified(secret, path="/console")] == ["webhook.test"]
        tested = page.locator("[data-testid=deliveries] tbody tr[data-event='webhook.test']")
        expect(tested).to_have_count(1)
        expect(tested.locator("td").nth(1)).to_have_text("Test message webhook.test")
        hook.locator("button.rotate").click()
        confirm(page)
        expect(hook_secret).not_to_have_text(secret)
        done = page.locator("[data-testid=webhook-table] ~ .result")
        expect(done).to_contain_text(
            f"The secret of webhook {owner} is replaced. The old one also signs until "
        )
        page.screenshot(path=str(artifacts / "console-webhooks.png"), full_page=True)
        hook.locator("button.delete").click()
        confirm(page)
        expect(hook).to_have_count(0)
        # Its secret goes with it; the line says so and the focus is not left on <body>.
        expect(page.locator("[data-testid=webhook-secret]")).to_be_hidden()
        expect(done).to_have_text(f"Webhook {owner} is deleted.")
        expect(page.locator("#webhooks-title")).to_be_focused()

        # Every change above is audited with the staff member as actor, service by service.
        me = "staff:staff-cx"
        for service, action in (
            ("notify", "staff.put"),
            ("feedback", "api_key.rotate"),
            ("actions", "playbooks.rollback"),
            ("notify", "webhook.create"),
            ("notify", "webhook.delete"),
        ):
            assert any(e["actor"] == me for e in audited(running_system, service, action)), (service, action)
        # The sections speak Korean too, and the switch is the staff member's language (their
        # pushes and notify's alert titles), as in the staff app.
        # The demo's staff-cx reads Korean (no store: ko); a switch to English and back writes both.
        page.click("#lang")
        expect(page.locator(".admin-nav button[data-view=directory]")).to_have_text("직원·매장")
        page.click("#lang")
        page_wait_for(lambda: staff_language(running_system, "staff-cx") == "en", timeout=10, page=page)
        page.click("#lang")
        page_wait_for(lambda: staff_language(running_system, "staff-cx") == "ko", timeout=10, page=page)
        expect(page.locator("[data-testid=webhook-table] th").nth(1)).to_have_text("이벤트")
        expect(page.locator("#webhook-form button[type=submit]")).to_have_text("만들기")
        assert not errors, errors
    finally:
        page.close()


AREA_MANAGER = "jimin@area.demo"  # area_manager of area-seoul (store-gangnam, store-hongdae)


def test_an_area_manager_sees_their_area_and_keeps_its_staffs_shifts(
    running_system: RunningSystem, browser: Browser, artifacts: Path
) -> None:
    """The demo's Seoul area manager: the board holds Gangnam and Hongdae only, a link to Busan's
    board is refused with a visible message (the service's 403), the outreach work is the
    area's, and the directory view shows the area's staff whose shifts they keep, without any
    of cx_admin's forms; another area's staff's shifts are 403."""
    for store in ("store-hongdae", "store-busan"):  # one item each: both stores have numbers
        sent = httpx.post(
            f"{running_system.url('feedback')}/v1/feedback",
            json={
                "store_id": store,
                "channel": "app",
                "text": "대기 시간이 너무 길어요",
                "ratings": {"csat": 2},
            },
            headers=bearer(running_system.store(store)["api_key"]),
        )
        assert sent.status_code == 202, sent.text
    page = browser.new_page(viewport=WIDE, locale="en-US")
    errors = watch_page_errors(page)
    area = {s["id"] for s in demo.STORES if s["area_id"] == "area-seoul"}
    try:
        sign_in_console(page, running_system, AREA_MANAGER, lang="en")
        expect(page.locator("[data-testid=who-role]")).to_have_text("Area manager")
        expect(page.locator("[data-testid=who-scope]")).to_contain_text("area-seoul")
        bars = page.locator("[data-testid=stores-chart] rect[data-store]")
        page_wait_for(lambda: bars.count() > 0, timeout=15, page=page)  # the next poll shows Hongdae's
        charted = bars.evaluate_all("rs => [...new Set(rs.map(r => r.dataset.store))]")
        assert "store-hongdae" in charted and set(charted) <= area, charted
        offered = set(page.locator("#store option").evaluate_all("os => os.map(o => o.value)")) - {""}
        assert offered and offered <= area, offered
        outreach = page.locator("[data-testid=outreach] tr[data-store]")
        expect(outreach.first).to_be_attached()
        shown = set(outreach.evaluate_all("rs => rs.map(r => r.dataset.store)"))
        assert shown and shown <= area, shown  # the demo's Busan assignment is not the area's
        expect(page.locator("[data-testid=store-refused]")).to_be_hidden()

        # The outreach list and the assignments through the console's own token: the area's only.
        token = console_token(page)
        profile = running_system.url("profile")
        work = httpx.get(f"{profile}/v1/outreach/assignments", headers=bearer(token))
        assert work.status_code == 200, work.text
        assert {a["store_id"] for a in work.json()["assignments"]} <= area
        busan = httpx.get(
            f"{profile}/v1/customers",
            params={"signal": "low_satisfaction", "store_id": "store-busan"},
            headers=bearer(token),
        )
        assert busan.status_code == 403, busan.text

        # A link to another area's store: refused, said on the page; "All stores" brings the board back.
        page.goto(f"{running_system.url('feedback')}/dashboard#lang=en&store=store-busan")
        page.reload()
        refused = page.locator("[data-testid=store-refused]")
        expect(refused).to_be_visible(timeout=15_000)
        expect(refused).to_contain_text("store-busan")
        expect(page.locator("#no-access")).to_be_hidden()
        page.screenshot(path=str(artifacts / "console-area-manager-refused.png"), full_page=True)
        page.select_option("#store", "")
        expect(refused).to_be_hidden()
        expect(page.locator("[data-testid=stores-chart] rect[data-store]").first).to_be_attached()

        # Staff shifts: the area's staff, only the shifts button; a shift added for Hongdae's lead.
        expect(page.locator("[data-testid=admin-nav]")).to_be_hidden()
        page.click(".manager-nav button[data-view=directory]")
        table = page.locator("[data-testid=staff-table]")
        expect(table.locator("tr[data-id=staff-hd-lead]")).to_have_count(1)
        listed = set(table.locator("tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)"))
        assert "staff-bs-lead" not in listed and "staff-gn-1" in listed, listed
        for hidden in ("[data-testid=staff-form]", "[data-testid=import-form]", "#store-form"):
            expect(page.locator(hidden)).to_be_hidden()
        expect(table.locator("button.edit:visible")).to_have_count(0)
        expect(table.locator("button.toggle:visible")).to_have_count(0)
        # Before a choice the empty shifts card says how to fill it.
        expect(page.locator("[data-testid=shifts] .for")).to_contain_text("Shifts")
        table.locator("tr[data-id=staff-hd-lead] button.shifts").click()
        expect(page.locator("[data-testid=shifts] .for")).to_contain_text("(staff-hd-lead)")
        page.locator("#shift-form [name=weekday]").select_option("2")
        page.locator("#shift-form [name=starts]").fill("10:00")
        page.locator("#shift-form [name=ends]").fill("19:00")
        page.locator("#shift-form button[type=submit]").click()
        page.locator("[data-testid=confirm] button.ok").click()  # the first shift is asked first
        expect(page.locator("[data-testid=shifts] tbody tr")).to_have_count(1)
        kept = httpx.get(
            f"{running_system.url('notify')}/v1/admin/staff/staff-hd-lead/shifts",
            headers=running_system.admin_headers,
        ).json()["shifts"]
        assert [(s["weekday"], s["starts"], s["ends"]) for s in kept] == [(2, "10:00", "19:00")]
        other = httpx.put(
            f"{running_system.url('notify')}/v1/admin/staff/staff-bs-lead/shifts",
            json=[],
            headers=bearer(token),
        )
        assert other.status_code == 403, other.text
        # Back to "always on duty", as seeded (other tests route alerts to this store's lead).
        page.locator("[data-testid=shifts] tbody tr button").click()
        expect(page.locator("[data-testid=shifts] tbody tr")).to_have_count(0)
        assert any(
            e["actor"] == "staff:staff-area-seoul" for e in audited(running_system, "notify", "shifts.put")
        )
        assert not errors, errors
    finally:
        page.close()


def test_an_analyst_reads_the_board_without_the_alerts_section_it_is_refused(
    running_system: RunningSystem, browser: Browser
) -> None:
    """The analyst gets no alerts (notify answers 403): the pattern and heads-up section said
    "could not load" as if down, and the 2 s poll asked notify again each time (apps review)."""
    page = browser.new_page(viewport=WIDE, locale="ko-KR")
    page.clock.install()
    errors = watch_page_errors(page)
    refusals: list[str] = []
    page.on("response", lambda r: refusals.append(r.url) if r.status == 403 else None)
    try:
        sign_in_console(page, running_system, "analyst@hq.demo")
        expect(page.locator("#board")).to_be_visible()
        expect(page.locator("#store-alerts")).to_be_hidden()
        # The cases too, every store's, without the export the analyst may not take.
        page.click("[data-testid=nav-cases]")
        expect(page.locator("[data-testid=case-list] tbody tr").first).to_be_visible(timeout=15_000)
        expect(page.locator("#case-export")).to_be_hidden()
        page.click("#nav button[data-view=board]")
        assert len(refusals) <= 3, refusals  # the two alert kinds and the store names, once each
        assert_not_asked_again(page, refusals)
        assert not errors, errors
    finally:
        page.close()


def test_a_manager_reads_cases_and_their_timelines_and_exports_the_csv(
    running_system: RunningSystem, browser: Browser, artifacts: Path
) -> None:
    """The Cases view (apps review: the console had no list, no case, no timeline and no export;
    the open cases on the board did nothing when clicked)."""
    text = f"국이 식어서 나왔어요 {uuid.uuid4().hex[:6]}"
    feedback_id = post_feedback(
        running_system, {"store_id": "store-gangnam", "channel": "app", "text": text, "ratings": {"csat": 1}}
    )
    page = browser.new_page(viewport=WIDE, locale="ko-KR")
    errors = watch_page_errors(page)
    try:
        sign_in_console(page, running_system, MANAGER)
        page.click("[data-testid=nav-cases]")
        row = page.locator(f"[data-testid=case-list] tr[data-id='{feedback_id}']")
        expect(row).to_be_visible(timeout=15_000)
        expect(page.locator("#store")).to_be_visible()  # the header's store and period filter the list
        stores = set(page.locator("[data-testid=case-list] tbody tr td:nth-child(2)").all_text_contents())
        assert stores == {"강남역점"}, stores  # the manager's store only
        row.click()
        detail = page.locator("[data-testid=case-detail]")
        expect(detail).to_have_attribute("data-id", feedback_id)
        expect(detail.locator(".case-text")).to_have_text(text)
        expect(detail.locator(".case-timeline li[data-kind=received]")).to_contain_text("접수")
        page.screenshot(path=str(artifacts / "console-cases.png"), full_page=True)
        # The period's CSV, through the manager's own token.
        with page.expect_download() as download:
            page.click("#case-export")
        csv_text = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert feedback_id in csv_text and csv_text.startswith("id,received_at")
        # From the board: an open case opens its timeline.
        page.click("#nav button[data-view=board]")
        open_row = page.locator(f"#cases tr[data-id='{feedback_id}']")
        expect(open_row).to_be_visible(timeout=15_000)
        open_row.locator("td.text").click()
        expect(page.locator("[data-testid=case-detail]")).to_have_attribute("data-id", feedback_id)
        assert not errors, errors
    finally:
        page.close()
