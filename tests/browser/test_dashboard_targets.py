"""The dashboard of the Gangnam store manager (#20 §4, §5) in headless Chromium, on the demo data
`make run` seeds: each metric of their store against its target (Gangnam's own NPS target over
the Seoul area's, the area's CSAT target) with its weekly trend, and the outreach work (contact
rate, revisits of reached vs not reached) of their store only — no Busan, no area row."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.conftest import NEEDS_CHROMIUM, sign_in_console, watch_page_errors
from tests.conftest import RunningSystem

pytestmark = NEEDS_CHROMIUM
MANAGER = "seoyeon@gangnam.demo"


def test_the_store_manager_sees_targets_and_outreach_work(
    running_system: RunningSystem, browser: Browser, artifacts: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1400}, locale="en-US")
    errors = watch_page_errors(page)
    missing: list[str] = []  # the console's own files, its icon included (it was /favicon.ico's 404)
    page.on("console", lambda m: missing.append(m.text) if "Failed to load resource" in m.text else None)
    try:
        sign_in_console(page, running_system, MANAGER, lang="en")

        targets = page.locator("[data-testid=targets]")
        expect(targets.locator("tr[data-place]")).to_have_count(1)  # their store, no area row
        gangnam = targets.locator("tr[data-place=store-gangnam]")
        expect(gangnam.locator("td[data-metric=nps]")).to_have_attribute("data-target", "40")  # store's own
        expect(gangnam.locator("td[data-metric=csat]")).to_have_attribute("data-target", "4")  # the area's
        expect(gangnam.locator("td[data-metric=nps] .goal-text")).to_contain_text("target ≥ 40")
        expect(gangnam.locator("td[data-metric=ack_minutes] .goal-text")).to_contain_text("target ≤ 5")
        assert gangnam.locator("td[data-metric] svg.spark").count() == 5

        outreach = page.locator("[data-testid=outreach]")
        low = outreach.locator("tr[data-store=store-gangnam][data-list=low_satisfaction]")
        expect(low.locator(".assigned")).to_have_text("1")
        expect(low.locator(".contact-rate")).to_have_text("100%")  # reached on the second try
        churn = outreach.locator("tr[data-store=store-gangnam][data-list=churn_risk]")
        expect(churn.locator(".contact-rate")).to_have_text("0%")
        assert outreach.locator("tr[data-store=store-busan]").count() == 0
        assert outreach.locator("tr[data-store=store-hongdae]").count() == 0

        page.locator("#lang").click()
        expect(page.locator("[data-testid=targets] th").first).to_have_text("매장·지역")
        page.screenshot(path=str(artifacts / "dashboard-targets-outreach.png"), full_page=True)
        # On a phone the page fits its width: the wide tables scroll inside their cards.
        page.set_viewport_size({"width": 390, "height": 844})
        expect(gangnam).to_be_attached()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not errors, errors
        assert not missing, missing
    finally:
        page.close()
