"""Accessibility: axe-core (the copy shipped in the `axe-playwright-python` wheel) over every
screen of the three browser UIs in headless Chromium, on the demo data: the staff app (sign-in,
inbox with an alert, the alert, the fleet), the manager console (sign-in, a store manager's board
with its targets' trend lines, each admin view and a case as the CX admin, in Korean and English)
and the customer's follow-up pages. Rules: WCAG 2.0–2.2 A and AA and axe's best practices; a
screen passes with no violation at all. axe finds what a machine can (contrast, names, roles,
landmarks); keyboard use and announcements are checked by hand (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import axe_playwright_python
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    LEAD,
    NEEDS_CHROMIUM,
    new_phone_context,
    post_feedback,
    sign_in,
    sign_in_console,
)
from tests.conftest import RunningSystem
from voc_feedback import pages

pytestmark = NEEDS_CHROMIUM

AXE_SCRIPT = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
MANAGER = "seoyeon@gangnam.demo"
CX_ADMIN = "cx@hq.demo"


def violations(page: Page) -> list[str]:
    """axe's violations on the page as shown now: rule, impact and the first elements."""
    page.evaluate(AXE_SCRIPT)
    found: list[dict[str, Any]] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(r => r.violations)",
        RULE_TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(" ".join(node["target"]) for node in v["nodes"][:3])
        for v in found
    ]


def test_the_staff_app_screens_pass_axe(browser: Browser, origin: str, running_system: RunningSystem) -> None:
    context = new_phone_context(browser, origin)
    page = context.new_page()
    page.goto(f"{origin}/")
    expect(page.locator("#login-form")).to_be_visible()
    assert violations(page) == []

    post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": "주문한 음식이 40분이나 늦게 나왔어요. 너무 실망입니다.",
        },
    )
    sign_in(page, origin, running_system.staff(LEAD))
    first = page.locator("a[href^='#/alerts/']").first
    expect(first).to_be_visible()
    # A normal-priority alert's badge is the colour that once failed contrast (3.5:1).
    assert violations(page) == []

    first.click()
    expect(page.locator("body[data-view=detail]")).to_be_attached()
    expect(page.locator("#app .plan-head, #app .plan").first).to_be_visible()
    assert violations(page) == []

    page.goto(f"{origin}/#/fleet")
    expect(page.locator("body[data-view=fleet]")).to_be_attached()
    assert violations(page) == []
    context.close()


def test_the_console_screens_pass_axe_in_both_languages(
    browser: Browser, running_system: RunningSystem
) -> None:
    post_feedback(  # an open case for the board, the Cases view and its detail, whatever ran before
        running_system,
        {"store_id": "store-gangnam", "channel": "app", "text": "계산이 두 번 됐어요. 환불해 주세요."},
    )
    for lang in ("ko", "en"):
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale=f"{lang}-KR")
        page = context.new_page()
        page.goto(f"{running_system.url('feedback')}/dashboard#lang={lang}")
        expect(page.locator("#login")).to_be_visible()
        assert violations(page) == [], "sign-in"

        sign_in_console(page, running_system, MANAGER, lang=lang)
        spark = page.locator("#targets svg.spark").first
        expect(spark).to_be_attached()
        # A trend line reads its weeks out: the metric, then the values oldest first.
        assert re.match(r".+ · .+: .+", spark.get_attribute("aria-label") or "")
        assert violations(page) == [], "a store manager's board"
        context.close()

        context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale=f"{lang}-KR")
        page = context.new_page()
        sign_in_console(page, running_system, CX_ADMIN, lang=lang)
        assert violations(page) == [], "the CX admin's board"
        views = page.locator("#nav button[data-view]:visible")
        names = [str(views.nth(i).get_attribute("data-view")) for i in range(views.count())]
        assert {"cases", "directory", "keys", "playbooks", "taxonomy", "webhooks", "suppressions"} <= set(
            names
        ), names
        for name in names:
            page.locator(f"#nav button[data-view='{name}']:visible").click()
            if name != "board":
                expect(page.locator(f"#view-{name}")).to_be_visible()
            page.wait_for_load_state("networkidle")
            assert violations(page) == [], name
            if name == "cases":
                page.locator("#view-cases tr.clickable").first.click()
                expect(page.locator("#case-detail")).to_be_visible()
                assert violations(page) == [], "a case"
        context.close()


def test_the_follow_up_pages_pass_axe(browser: Browser, running_system: RunningSystem) -> None:
    """The pages as feedback draws them (served at a made-up link through the page's route, with
    the service's own stylesheet), and the service's real page for a link that is not valid."""
    link = f"{running_system.url('feedback')}/f/made-up"
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="ko-KR")
    page = context.new_page()

    def show(html: str) -> None:
        page.route(
            link, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
        )
        page.goto(link)
        page.unroute(link)

    for language in ("ko", "en"):
        show(
            pages.follow_up_form(
                token="made-up",
                language=language,
                store_name="강남역점",
                error="별점을 골라 주세요." if language == "ko" else "",
            )
        )
        expect(page.locator("form fieldset").first).to_be_visible()
        # The link to the other language is marked as that language (WCAG 3.1.2).
        assert page.locator("a.lang").get_attribute("lang") == ("en" if language == "ko" else "ko")
        assert violations(page) == [], language
        show(pages.follow_up_thanks(language, satisfied=False, reopened=True))
        assert violations(page) == [], f"thanks ({language})"
        page.goto(f"{link}?lang={language}")  # the service's own answer: not a valid link
        expect(page.locator("h1")).to_be_visible()
        assert violations(page) == [], f"invalid link ({language})"
    context.close()
