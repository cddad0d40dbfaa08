"""The manager console by keyboard and at 320 CSS px (a WCAG 2.2 AA review, each finding
reproduced first): an open case is a button that Tab reaches and Space or Enter presses, and its
case then has the focus; a one-tap correction leaves the focus on the control pressed; the view
shown is exposed (aria-current) on its nav button; no view scrolls the page sideways at 320 px;
a refused sign-in marks both fields; words in the other language say so (lang)."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import NEEDS_CHROMIUM, post_feedback, sign_in_console, watch_page_errors
from tests.conftest import RunningSystem

pytestmark = NEEDS_CHROMIUM
MANAGER = "seoyeon@gangnam.demo"  # store_manager of store-gangnam
CX_ADMIN = "cx@hq.demo"
WIDE = {"width": 1280, "height": 1000}
NARROW = {"width": 320, "height": 640}


def tab_to(page: Page, target: Locator, limit: int = 400) -> None:
    """Press Tab until `target` has the focus, as a keyboard user moves through the page."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("node => node === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


# What sticks out of the viewport outside any scroll container (a card's own scrolling is fine).
STICKING_OUT = """() => [...document.querySelectorAll("body *")].filter((node) => {
  if (node.getBoundingClientRect().right <= innerWidth + 1 || !node.getClientRects().length) return false;
  if (getComputedStyle(node).position === "absolute") return true;  // maybe not clipped by its card
  for (let up = node.parentElement; up && up !== document.body; up = up.parentElement)
    if (getComputedStyle(up).overflowX !== "visible") return false;
  return true;
}).slice(0, 5).map((node) => node.tagName + (node.id ? "#" + node.id : "") + "." + node.className)"""


def assert_fits(page: Page, where: str) -> None:
    """No page-level horizontal scroll at the viewport's width."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    scroll_width = int(page.evaluate("document.documentElement.scrollWidth"))
    assert scroll_width <= width, (where, scroll_width, page.evaluate(STICKING_OUT))


def test_an_open_case_opens_by_keyboard_and_its_case_takes_the_focus(
    running_system: RunningSystem, browser: Browser
) -> None:
    feedback_id = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": f"국이 식어서 나왔어요 {uuid.uuid4().hex[:6]}",
            "ratings": {"csat": 1},
        },
    )
    page = browser.new_page(viewport=WIDE, locale="ko-KR")
    errors = watch_page_errors(page)
    try:
        sign_in_console(page, running_system, MANAGER)
        row = page.locator(f"#cases tr[data-id='{feedback_id}']")
        expect(row).to_be_visible(timeout=20_000)
        assert row.get_attribute("tabindex") is None  # the row is no control; its button is
        opener = row.locator("button.open-case")
        expect(opener).to_have_attribute("type", "button")
        page.locator("#nav button[data-view=board]").focus()
        tab_to(page, opener)
        page.keyboard.press("Space")
        detail = page.locator("[data-testid=case-detail]")
        expect(detail).to_have_attribute("data-id", feedback_id)
        expect(detail.locator("h2")).to_be_focused()
        # The view changed with it, and says so on its nav button.
        expect(page.locator("[data-testid=nav-cases]")).to_have_attribute("aria-current", "page")
        expect(page.locator("#nav button[data-view=board]")).not_to_have_attribute("aria-current", "page")

        # The Cases list's rows alike, by Enter.
        listed = page.locator(f"[data-testid=case-list] tr[data-id='{feedback_id}']")
        expect(listed).to_be_visible()
        assert listed.get_attribute("tabindex") is None
        page.locator("#case-status").focus()
        detail.evaluate("node => { node.hidden = true; node.removeAttribute('data-id'); }")
        tab_to(page, listed.locator("button.open-case"))
        page.keyboard.press("Enter")
        expect(detail).to_have_attribute("data-id", feedback_id)
        expect(detail.locator("h2")).to_be_focused()
        assert not errors, errors
    finally:
        page.close()


def test_a_correction_by_keyboard_keeps_the_focus_on_its_control(
    running_system: RunningSystem, browser: Browser
) -> None:
    feedback_id = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": f"The soup came out cold {uuid.uuid4().hex[:6]}",
            "ratings": {"csat": 1},
        },
    )
    page = browser.new_page(viewport=WIDE, locale="en-GB")
    errors = watch_page_errors(page)
    try:
        sign_in_console(page, running_system, MANAGER, lang="en")
        row = page.locator(f"#cases tr[data-id='{feedback_id}']")
        expect(row).to_be_visible(timeout=20_000)
        # The one sentiment not in force (a redraw of a pressed one would send nothing).
        chosen = row.locator(".sentiments button[aria-pressed=true]").get_attribute("data-sentiment")
        value = "positive" if chosen != "positive" else "neutral"
        button = row.locator(f".sentiments button[data-sentiment={value}]")
        box = button.bounding_box()
        assert box and box["width"] >= 24 and box["height"] >= 24, box  # WCAG 2.5.8
        picker = row.locator(f"select[data-correct-category='{feedback_id}']")
        box = picker.bounding_box()
        assert box and box["width"] >= 24 and box["height"] >= 24, box

        button.focus()
        with page.expect_response(
            lambda r: r.url.endswith(f"/v1/feedback/{feedback_id}/corrections")
        ) as sent:
            page.keyboard.press("Enter")
        assert sent.value.status == 200, sent.value.text()
        expect(button).to_have_attribute("aria-pressed", "true")  # the redrawn row's button
        expect(button).to_be_focused()

        # The category by keyboard: the picker keeps the focus too.
        before = picker.input_value()
        picker.focus()
        with page.expect_response(
            lambda r: r.url.endswith(f"/v1/feedback/{feedback_id}/corrections")
        ) as sent:
            page.keyboard.press(
                "ArrowDown" if picker.locator("option").last.get_attribute("value") != before else "ArrowUp"
            )
        assert sent.value.status == 200, sent.value.text()
        expect(picker).not_to_have_value(before)
        expect(picker).to_be_focused()
        assert not errors, errors
    finally:
        page.close()


def test_every_view_fits_320_px_and_says_which_it_is(running_system: RunningSystem, browser: Browser) -> None:
    """At 320 CSS px (WCAG 1.4.10) a wide table scrolls inside its card, never the page."""
    feedback_id = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": "계산대 줄이 너무 길어요 " * 8,
            "ratings": {"csat": 1},
        },
    )
    page = browser.new_page(viewport=NARROW, locale="ko-KR")
    errors = watch_page_errors(page)
    try:
        sign_in_console(page, running_system, CX_ADMIN)
        expect(page.locator(f"#cases tr[data-id='{feedback_id}']")).to_be_attached(timeout=20_000)
        assert_fits(page, "board")
        views = page.locator("#nav button[data-view]:visible")
        names = [str(views.nth(i).get_attribute("data-view")) for i in range(views.count())]
        assert {"board", "cases", "directory", "keys", "playbooks", "taxonomy", "webhooks"} <= set(names)
        for name in names:
            page.locator(f"#nav button[data-view='{name}']:visible").click()
            expect(page.locator(f"#nav button[data-view='{name}']:visible")).to_have_attribute(
                "aria-current", "page"
            )
            expect(page.locator("#nav button[aria-current]:visible")).to_have_count(1)
            if name != "board":
                expect(page.locator(f"#view-{name}")).to_be_visible()
            page.wait_for_load_state("networkidle")
            assert_fits(page, name)
            if name == "cases":
                page.locator("#view-cases button.open-case").first.click()
                expect(page.locator("#case-detail")).to_be_visible()
                assert_fits(page, "a case")
        assert not errors, errors
    finally:
        page.close()


def test_a_refused_sign_in_marks_both_fields_and_other_languages_are_marked(
    running_system: RunningSystem, browser: Browser
) -> None:
    page = browser.new_page(viewport=WIDE, locale="ko-KR")
    try:
        page.goto(f"{running_system.url('feedback')}/dashboard#lang=ko")
        expect(page.locator("#lang")).to_have_text("English")
        expect(page.locator("#lang")).to_have_attribute("lang", "en")  # WCAG 3.1.2
        page.fill("#email", "nobody@nowhere.demo")
        page.fill("#password", "not-the-password")
        page.click("#login button[type=submit]")
        expect(page.locator("#login-error")).not_to_be_empty()
        for field in ("#email", "#password"):
            expect(page.locator(field)).to_have_attribute("aria-invalid", "true")
            expect(page.locator(field)).to_have_attribute("aria-describedby", "login-error")

        # The next attempt clears them (before its answer, whatever it is).
        page.fill("#email", CX_ADMIN)
        page.fill("#password", running_system.staff(CX_ADMIN)["password"])
        page.click("#login button[type=submit]")
        expect(page.locator("body[data-loaded=true]")).to_have_count(1)
        for field in ("#email", "#password"):
            expect(page.locator(field)).not_to_have_attribute("aria-invalid", "true")
            expect(page.locator(field)).not_to_have_attribute("aria-describedby", "login-error")

        page.locator("#nav button[data-view=taxonomy]").click()
        table = page.locator("[data-testid=taxonomy-table]")
        expect(table.locator("th", has_text="한국어")).to_have_attribute("lang", "ko")
        expect(table.locator("th", has_text="English")).to_have_attribute("lang", "en")
    finally:
        page.close()
    # In the English console the switch is Korean.
    page = browser.new_page(viewport=WIDE, locale="en-GB")
    try:
        page.goto(f"{running_system.url('feedback')}/dashboard#lang=en")
        expect(page.locator("#lang")).to_have_text("한국어")
        expect(page.locator("#lang")).to_have_attribute("lang", "ko")
    finally:
        page.close()
