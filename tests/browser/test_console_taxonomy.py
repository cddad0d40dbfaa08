"""The console's Taxonomy section (#20 §3) in headless Chromium, as the demo cx_admin: a new
category is added with the form, published with its default playbook and listed; retiring a
category that playbooks still name is refused, the problem naming the playbooks, and nothing
changes; a staff member is put in the department that owns food safety. Audited as the staff
member."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.browser.conftest import NEEDS_CHROMIUM, sign_in_console, watch_page_errors
from tests.conftest import RunningSystem

pytestmark = NEEDS_CHROMIUM
CX_ADMIN = "cx@hq.demo"
WIDE = {"width": 1280, "height": 1400}


def default_playbook(category: str) -> str:
    return (
        f"id: {category.replace('_', '-')}-default\nversion: 1\n"
        "title: {ko: 콘솔 카테고리, en: Console category}\n"
        f"when:\n  category: {category}\npriority: normal\nnotify: {{roles: [shift_lead]}}\n"
        "sla: {ack: 5m, resolve: 1h}\nsteps:\n  - {ko: 확인한다, en: Check}\n"
        "script: {ko: 확인하겠습니다., en: We will check.}\n"
    )


def test_a_cx_admin_adds_a_category_and_sees_an_orphaning_retirement_refused(
    running_system: RunningSystem, browser: Browser, artifacts: Path
) -> None:
    page = browser.new_page(viewport=WIDE, locale="en-US")
    errors = watch_page_errors(page)
    actions = running_system.url("actions")
    cat = f"console_{uuid.uuid4().hex[:6]}"
    try:
        sign_in_console(page, running_system, CX_ADMIN, lang="en")
        page.click("#nav button[data-view=taxonomy]")
        table = page.locator("[data-testid=taxonomy-table]")
        expect(table.locator("tr[data-id=food_safety]")).to_have_count(1)
        # The severity reads as a label ("High"), not its code.
        severity = table.locator("tr[data-id=food_safety] td").nth(4)
        expect(severity).to_have_text("High")
        before = httpx.get(f"{actions}/v1/taxonomy").json()["version"]

        form = page.locator("#category-form")
        form.locator("[name=id]").fill(cat)
        form.locator("[name=ko]").fill("콘솔")
        form.locator("[name=en]").fill("Console")
        form.locator("[name=parent]").fill("food_safety")
        form.locator("[name=severity]").select_option("high")
        form.locator("[name=department]").fill("hq_food_safety")
        form.locator("button[type=submit]").click()
        draft = page.locator("#taxonomy-form")
        # Without its default playbook: refused, the problem naming the category.
        draft.locator("button[type=submit]").click()
        expect(
            page.locator(f"[data-testid=taxonomy-problems] tr[data-field='categories.{cat}']")
        ).to_contain_text("no default playbook")
        expect(draft.locator("button.publish")).to_be_disabled()
        draft.locator("[name=playbooks]").set_input_files(
            files=[
                {
                    "name": f"{cat}.yaml",
                    "mimeType": "application/yaml",
                    "buffer": default_playbook(cat).encode(),
                }
            ]
        )
        draft.locator("button[type=submit]").click()
        expect(draft.locator(".result")).to_contain_text("No problems")
        draft.locator("button.publish").click()
        expect(draft.locator(".result")).to_contain_text(f"Published: Published version {before + 1}")
        expect(table.locator(f"tr[data-id={cat}]")).to_contain_text("Console")
        assert httpx.get(f"{actions}/v1/taxonomy").json()["version"] == before + 1

        # Retiring food_quality would orphan its playbooks: refused, naming them; nothing changes.
        retiring = table.locator("tr[data-id=food_quality]")
        expect(retiring).to_contain_text("Active")
        retiring.locator("button.retire").click()
        # The table shows the draft's retirement before it is published (and the button is spent).
        expect(retiring.locator("td.status")).to_have_text("Retired (draft)")
        expect(retiring).to_have_attribute("data-draft", "retired")
        expect(retiring.locator("button.retire")).to_be_disabled()
        draft.locator("button[type=submit]").click()
        refused = page.locator("[data-testid=taxonomy-problems] tr[data-field='categories.food_quality']")
        expect(refused).to_contain_text("food-quality-default")
        expect(draft.locator("button.publish")).to_be_disabled()
        page.screenshot(path=str(artifacts / "console-taxonomy-refused.png"), full_page=True)
        assert httpx.get(f"{actions}/v1/taxonomy").json()["version"] == before + 1

        # A staff member joins the department that owns food safety (notify's directory).
        page.click("#nav button[data-view=directory]")
        staff = page.locator("#staff-form")
        staff.locator("[name=id]").fill(f"officer-{cat}")
        staff.locator("[name=name]").fill("Food Safety Officer")
        staff.locator("[name=email]").fill(f"{cat}@hq.demo")
        staff.locator("[name=password]").fill("officer-password-1")
        staff.locator("[name=department_id]").fill("hq_food_safety")
        staff.locator("button[type=submit]").click()
        expect(page.locator(f"[data-testid=staff-table] tr[data-id='officer-{cat}']")).to_contain_text(
            "hq_food_safety"
        )

        audit = httpx.get(
            f"{actions}/v1/audit", params={"action": "taxonomy.publish"}, headers=running_system.admin_headers
        ).json()["entries"]
        mine = [e for e in audit if cat in e["detail"].get("added", [])]
        assert len(mine) == 1 and mine[0]["actor"].startswith("staff:")
        assert errors == []
    finally:
        page.close()
