"""The staff app by keyboard and screen reader (WCAG 2.2 AA, the findings of a manual review), in a
real headless Chromium against the running system: a change of screen moves the focus to its
heading and names the tab (2.4.3, 2.4.2), a redraw by a live event does not; a new alert on the
inbox and an action's outcome reach the persistent live region #announcer (4.1.3); the focus ring
is opaque and visible on the page and in the green top bar (2.4.7, 1.4.11); the language switch is
marked in the language of its words (3.1.2); an empty sign-in is said in the phone's language and
marks the fields (3.3.1). What is read out is the live region's text: screen readers say what is
written into a live region already in the page, not what comes with a newly drawn screen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import (
    NEEDS_CHROMIUM,
    new_phone_context,
    post_feedback,
    signed_in_phone,
)
from tests.conftest import RunningSystem

pytestmark = NEEDS_CHROMIUM

APP = "Frontline VoC"
BACKGROUND = "(s) => getComputedStyle(document.querySelector(s)).backgroundColor"


@pytest.fixture(scope="module")
def page(browser: Browser, origin: str, running_system: RunningSystem) -> Iterator[Page]:
    """The shift lead's phone (Korean), signed in through the form."""
    yield from signed_in_phone(browser, origin, running_system)


def to_inbox(page: Page) -> None:
    page.evaluate("location.hash = '#/'")
    expect(page.locator("body[data-view=inbox]")).to_be_attached()


def new_alert_row(page: Page, system: RunningSystem, text: str) -> Locator:
    feedback_id = post_feedback(system, {"store_id": "store-gangnam", "channel": "kiosk", "text": text})
    row = page.locator(f'a.alert-row[data-feedback-id="{feedback_id}"]')
    expect(row).to_be_visible()
    return row


def open_by_keyboard(page: Page, row: Locator) -> str:
    """Enter on the row (focused as Tab would focus it); the alert's title."""
    title = row.locator(".row-title").inner_text()
    row.focus()
    page.keyboard.press("Enter")
    expect(page.locator("body[data-view=detail]")).to_be_attached()
    return title


def focus_by_tab(page: Page, selector: str, key: str = "Tab", presses: int = 12) -> None:
    """Tab (or Shift+Tab) from where the focus is until `selector` has it: a keyboard user's way."""
    for _ in range(presses):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{selector} never took the focus")


def focus_ring(page: Page) -> dict[str, Any]:
    ring: dict[str, Any] = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return {style: s.outlineStyle, width: s.outlineWidth, color: s.outlineColor}; }"
    )
    return ring


def luminance(rgb: tuple[int, ...]) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else float(((v + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def opaque(color: str) -> tuple[int, ...]:
    """An `rgb(r, g, b)` colour as numbers; a translucent `rgba(…)` one fails."""
    match = re.fullmatch(r"rgb\((\d+), (\d+), (\d+)\)", color)
    assert match, f"not an opaque colour: {color}"
    return tuple(int(c) for c in match.groups())


def test_opening_an_alert_and_going_back_move_the_focus_and_name_the_tab(
    page: Page, running_system: RunningSystem
) -> None:
    # Signed in: the form is gone, the focus is on the inbox's heading, not on <body>.
    inbox_heading = page.locator("section.inbox h1")
    expect(inbox_heading).to_be_focused()
    expect(page).to_have_title(f"받은 알림 — {APP}")

    row = new_alert_row(page, running_system, "키오스크 화면이 멈춰서 주문을 못 했어요.")
    title = open_by_keyboard(page, row)
    heading = page.locator("h1.detail-title")
    expect(heading).to_have_text(title)
    expect(heading).to_be_focused()
    expect(page).to_have_title(f"{title} — {APP}")

    # "← 받은 알림" (just above the heading) by keyboard: back on the inbox, the focus on its heading.
    focus_by_tab(page, "a.back", key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("body[data-view=inbox]")).to_be_attached()
    expect(inbox_heading).to_be_focused()
    expect(page).to_have_title(f"받은 알림 — {APP}")


def test_a_new_alert_on_the_inbox_is_said_and_the_focus_stays(
    page: Page, running_system: RunningSystem
) -> None:
    to_inbox(page)
    page.locator("section.inbox h1").focus()
    page.evaluate("window.__heading = document.activeElement")
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")

    row = new_alert_row(page, running_system, "매장 음악이 너무 커서 대화가 안 돼요.")
    title = row.locator(".row-title").inner_text()
    expect(announcer).to_contain_text(f"새 알림: {title}")
    # No visible toast on the inbox (the row shows it), and the live redraw took no focus: the
    # same heading element still has it.
    expect(page.locator("#toast")).to_be_hidden()
    assert page.evaluate("document.activeElement === window.__heading")


def test_an_acknowledgement_is_said_and_the_focus_goes_to_its_message(
    page: Page, running_system: RunningSystem
) -> None:
    to_inbox(page)
    row = new_alert_row(page, running_system, "주문한 음료가 다른 메뉴로 나왔어요.")
    open_by_keyboard(page, row)
    focus_by_tab(page, "#ack-btn")
    page.keyboard.press("Enter")
    expect(page.locator("#detail[data-status=acknowledged]")).to_be_visible()
    flash = page.locator("#flash")
    expect(flash).to_have_text("확인 처리했습니다.")
    # The button is gone with the redraw: the focus is on the message, not on <body>, and the
    # message was written into the live region (the flash itself came with the new screen).
    expect(flash).to_be_focused()
    expect(page.locator("#announcer")).to_contain_text("확인 처리했습니다.")


def test_the_focus_ring_is_opaque_on_the_page_and_white_in_the_top_bar(browser: Browser, origin: str) -> None:
    context = new_phone_context(browser, origin)
    try:
        page = context.new_page()
        page.goto(f"{origin}/")
        expect(page.locator("#login-form")).to_be_visible()
        focus_by_tab(page, "#lang")
        ring = focus_ring(page)
        assert (ring["style"], ring["width"]) == ("solid", "3px"), ring
        topbar = opaque(page.evaluate(BACKGROUND, ".topbar"))
        assert contrast(opaque(ring["color"]), topbar) >= 3, ring

        focus_by_tab(page, "#login-form button[type=submit]")
        ring = focus_ring(page)
        assert (ring["style"], ring["width"]) == ("solid", "3px"), ring
        card = opaque(page.evaluate(BACKGROUND, "#login-form"))
        assert contrast(opaque(ring["color"]), card) >= 3, ring
        assert page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineOffset)") >= 2
    finally:
        context.close()


def test_the_language_switch_is_marked_in_the_language_of_its_words(browser: Browser, origin: str) -> None:
    context = new_phone_context(browser, origin)
    try:
        page = context.new_page()
        page.goto(f"{origin}/")
        switch = page.locator("#lang")
        expect(page.locator("html")).to_have_attribute("lang", "ko")
        expect(switch).to_have_text("EN")
        expect(switch).to_have_attribute("lang", "en")
        switch.click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(switch).to_have_text("한글")
        expect(switch).to_have_attribute("lang", "ko")
        expect(page).to_have_title(f"Staff sign-in — {APP}")
    finally:
        context.close()


def test_an_empty_sign_in_is_said_in_korean_and_marks_the_fields(browser: Browser, origin: str) -> None:
    context = new_phone_context(browser, origin)
    try:
        page = context.new_page()
        page.goto(f"{origin}/")
        expect(page).to_have_title(f"직원 로그인 — {APP}")
        email, password = page.locator("#email"), page.locator("#password")
        page.click("#login-form button[type=submit]")
        error = page.locator("#login-error")
        # Not the server's English "2 field(s) are invalid.".
        expect(error).to_have_text("이메일과 비밀번호를 입력하세요.")
        for field in (email, password):
            expect(field).to_have_attribute("aria-invalid", "true")
            expect(field).to_have_attribute("aria-describedby", "login-error")
        expect(email).to_be_focused()  # the first field to put right

        # The next attempt clears the marks; only the field still empty is marked again.
        email.fill("nobody@gangnam.demo")
        page.click("#login-form button[type=submit]")
        expect(password).to_have_attribute("aria-invalid", "true")
        expect(email).not_to_have_attribute("aria-invalid", "true")
        expect(email).not_to_have_attribute("aria-describedby", "login-error")
        expect(password).to_be_focused()

        page.evaluate("localStorage.setItem('voc.lang', 'en')")
        page.reload()
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("Enter your e-mail and password.")
    finally:
        context.close()
