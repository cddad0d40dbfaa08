"""The customer's story in the staff app (#18 §1), in a real headless Chromium on a phone
viewport against the running system: the alert of a returning VIP shows their earlier contacts
as a short timeline (channel and store, category, case status and outcome, masked excerpt) and
the household link; a Korean shift lead reads it all in Korean, an English-speaking shift lead
at the same Korean store reads the same alert in English (titles, plan, signal reasons).
Screenshots go to tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import CHROMIUM, new_phone_context
from tests.conftest import RunningSystem
from tests.support.story import LEAD, Story, add_staff, customer_with_a_story
from tests.support.system import login

EN_LEAD = "robin@gangnam.demo"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed: `make test-browser`"),
]


@pytest.fixture(scope="module")
def story(running_system: RunningSystem) -> Story:
    return customer_with_a_story(running_system)


def logged_in(browser: Browser, origin: str, email: str, password: str) -> Iterator[Page]:
    context = new_phone_context(browser, origin)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{origin}/")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    expect(page.locator("body[data-view=inbox]")).to_be_attached()
    yield page
    assert errors == [], f"uncaught errors in the page: {errors}"
    context.close()


@pytest.fixture
def korean_page(browser: Browser, origin: str, running_system: RunningSystem) -> Iterator[Page]:
    yield from logged_in(browser, origin, LEAD, running_system.staff(LEAD)["password"])


@pytest.fixture
def english_page(browser: Browser, origin: str, running_system: RunningSystem) -> Iterator[Page]:
    _, password = add_staff(running_system, staff_id="staff-gn-robin", email=EN_LEAD, language="en")
    yield from logged_in(browser, origin, EN_LEAD, password)


def open_alert(page: Page, origin: str, story: Story) -> None:
    page.goto(f"{origin}/#/alerts/{story.alert_id}")
    expect(page.locator(f"#detail[data-alert-id='{story.alert_id}']")).to_be_visible()


def test_the_timeline_in_korean(korean_page: Page, origin: str, story: Story, artifacts: Path) -> None:
    page = korean_page
    open_alert(page, origin, story)
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    timeline = page.locator("#recent-contacts > li")
    expect(timeline).to_have_count(1)  # the earlier call; not the complaint on screen
    call = timeline.first
    expect(call).to_have_attribute("data-feedback-id", story.first)
    expect(call.locator(".contact-where")).to_have_text("콜센터 · 홍대입구점")
    expect(call.locator(".contact-category")).to_have_text("대기 시간")
    expect(call.locator(".contact-status")).to_have_text("해결됨 · 보상 제공")
    expect(call.locator(".contact-excerpt")).to_contain_text("김**입니다.")
    expect(call.locator(".contact-excerpt")).to_contain_text("***1234")
    expect(call.locator(".contact-excerpt")).not_to_contain_text("김하늘")
    expect(page.locator("#household")).to_have_text("가구 운전자 · 김** (계정 소유자)")
    expect(page.locator("#reasons")).to_contain_text("대기 시간 불만 2건")
    expect(page.locator("h1.detail-title")).to_contain_text("[긴급] 대기 시간")
    expect(page.locator("#plan-steps > li").first).to_contain_text("응대 전에 고객의 최근 접촉 이력")
    call.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "staff-app-story-ko.png", full_page=True)


# The wait-time plan a Gangnam complaint gets: the default, or on weekdays 11:30-13:30 Seoul time
# the restaurant lunch-peak plan (the suite failed when CI ran at a Seoul lunchtime). Its English
# title and a piece of its script.
ENGLISH_PLANS = {
    "wait-time-default": ("Wait-time complaint — update and apologise", "I'm sorry you've been waiting"),
    "restaurant-wait-time-lunch-peak": (
        "Weekday lunch-rush wait — manage the turnover",
        "sorry for the wait on your lunch break",
    ),
}


def test_the_same_alert_in_the_staff_members_english(
    english_page: Page, origin: str, story: Story, artifacts: Path, running_system: RunningSystem
) -> None:
    page = english_page
    expect(page.locator("html")).to_have_attribute("lang", "en")
    open_alert(page, origin, story)
    expect(page.locator("h1.detail-title")).to_contain_text("[URGENT] Wait time")
    rest = httpx.get(f"{origin}/v1/alerts/{story.alert_id}", headers=login(running_system, LEAD)).json()
    title, script = ENGLISH_PLANS[rest["plan"]["playbook_id"]]
    expect(page.locator("#plan-title")).to_have_text(title)
    expect(page.locator("#plan-steps > li").first).to_contain_text("Before you approach")
    expect(page.locator("#plan-script")).to_contain_text(script)
    expect(page.locator("#reasons")).to_contain_text("complaints in 30 days: Wait time")
    call = page.locator("#recent-contacts > li").first
    expect(call.locator(".contact-where")).to_have_text("Call center · 홍대입구점")
    expect(call.locator(".contact-category")).to_have_text("Wait time")
    expect(call.locator(".contact-status")).to_contain_text("Resolved · ")  # a label, not the code
    expect(page.locator("#household")).to_have_text("Household driver · 김** (account owner)")
    page.screenshot(path=artifacts / "staff-app-story-en.png", full_page=True)
