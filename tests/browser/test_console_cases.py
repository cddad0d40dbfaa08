"""The console's cases and board as a product walk-through found them, in headless Chromium on the
demo data: a case's timeline said "staff:staff-gn-lead" and "notify" (now who, in words), its
times had no time zone (a manager abroad read Seoul's times as their own clock), a praise stood
among the open cases to be closed, and the targets table showed 8 weeks under "last 30 days"."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.browser.conftest import (
    LEAD,
    NEEDS_CHROMIUM,
    post_feedback,
    sign_in_console,
    staff_language,
    wait_for,
    watch_page_errors,
)
from tests.conftest import RunningSystem
from tests.support.story import alert_of
from tests.support.system import login

pytestmark = NEEDS_CHROMIUM
MANAGER = "seoyeon@gangnam.demo"  # store_manager of store-gangnam (Asia/Seoul)
ANALYST = "analyst@hq.demo"  # reads every store's feedback, no staff directory
WIDE = {"width": 1280, "height": 1400}
ABROAD = "America/New_York"  # the reader's clock: not the store's
SEOUL = re.compile(r"GMT\+9\b")
NEW_YORK = re.compile(r"GMT-[45]\b|\bE[SD]T\b")


def feedback_item(system: RunningSystem, feedback_id: str) -> dict[str, object]:
    url = f"{system.url('feedback')}/v1/feedback/{feedback_id}"
    answer: dict[str, object] = httpx.get(url, headers=system.admin_headers).json()
    return answer


def test_a_case_says_who_and_when_with_the_zone_and_praise_is_no_open_case(
    running_system: RunningSystem, browser: Browser, artifacts: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    complaint = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": f"국이 식어서 나왔어요 {tag}",
            "ratings": {"csat": 1},
        },
    )
    praise = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": f"직원분이 정말 친절했어요. 감사합니다! {tag}",
        },
    )
    # The shift lead takes the complaint in the staff app; the praise's alert is an FYI one.
    lead = login(running_system, LEAD)
    alert = wait_for(lambda: alert_of(running_system, lead, complaint), timeout=30)
    taken = httpx.post(f"{running_system.url('notify')}/v1/alerts/{alert['id']}/ack", headers=lead)
    assert taken.status_code == 200, taken.text
    wait_for(lambda: feedback_item(running_system, complaint)["status"] == "acknowledged", timeout=30)
    praise_alert = wait_for(lambda: alert_of(running_system, lead, praise), timeout=30)
    assert praise_alert["priority"] == "info", praise_alert
    wait_for(lambda: feedback_item(running_system, praise)["priority"] == "info", timeout=30)
    lead_name = running_system.staff(LEAD)["name"]

    page = browser.new_page(viewport=WIDE, locale="ko-KR", timezone_id=ABROAD)
    errors = watch_page_errors(page)
    try:
        sign_in_console(page, running_system, MANAGER)
        # The board: the complaint waits, the praise is no open case (counted apart as FYI).
        open_row = page.locator(f"#cases tr[data-id='{complaint}']")
        expect(open_row).to_be_visible(timeout=15_000)
        expect(page.locator(f"#cases tr[data-id='{praise}']")).to_have_count(0)
        expect(open_row.locator("td.age")).to_have_attribute("title", SEOUL)  # received, in Seoul's time
        fyi = page.locator("[data-testid=loop-kpis] dt", has_text="참고 알림")
        expect(fyi).to_have_count(1)
        assert int(fyi.locator("xpath=following-sibling::dd[1]").inner_text()) >= 1
        # The targets follow the period picked (they were the last 8 weeks under "last 30 days").
        expect(page.locator("[data-testid=targets-period]")).to_have_text("(최근 30일, 주별 추이)")
        page.select_option("#period", "7")
        expect(page.locator("[data-testid=targets-period]")).to_have_text("(최근 7일, 주별 추이)")
        page.select_option("#period", "30")

        # The Cases view lists the praise with all feedback, marked FYI as the staff app marks it.
        page.click("[data-testid=nav-cases]")
        listed = page.locator(f"[data-testid=case-list] tr[data-id='{praise}']")
        expect(listed).to_be_visible(timeout=15_000)
        expect(listed.locator("[data-priority=info]")).to_have_text("참고")
        expect(listed.locator("td").first).to_have_text(SEOUL)
        # On a phone a case is a block: its status, and its text's open button, are on screen
        # (as table columns they sat to the right of a screen-wide date).
        page.set_viewport_size({"width": 390, "height": 844})
        for part in ("td[data-status]", "button.open-case"):
            box = listed.locator(part).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (part, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(artifacts / "console-cases-phone.png"), full_page=False)
        page.set_viewport_size(WIDE)

        # The complaint's case: each step's time in the store's zone, and who took it in words.
        page.locator(f"[data-testid=case-list] tr[data-id='{complaint}'] button.open-case").click()
        detail = page.locator("[data-testid=case-detail]")
        expect(detail).to_have_attribute("data-id", complaint)
        expect(detail.locator("dd[data-key=time_zone]")).to_have_text("Asia/Seoul (매장 시간대)")
        timeline = detail.locator(".case-timeline")
        expect(timeline.locator("li[data-kind=received]")).to_contain_text("접수 · 매장 앱")
        expect(timeline.locator("li[data-kind=alerted]")).to_contain_text(" · 시스템")
        taken_step = timeline.locator("li[data-kind=acknowledged]")
        expect(taken_step).to_contain_text(f"확인 · {lead_name} (시프트 리더)")
        for step in timeline.locator("li").all():
            assert SEOUL.search(step.inner_text()), step.inner_text()
            assert not re.search(r"staff:|\bnotify\b|api_key:", step.inner_text()), step.inner_text()
        page.screenshot(path=str(artifacts / "console-case-who-and-when.png"), full_page=True)
        page.click("#lang")
        expect(taken_step).to_contain_text(f"Acknowledged · {lead_name} (Shift lead)")
        expect(timeline.locator("li[data-kind=alerted]")).to_contain_text(" · System")
        expect(detail.locator("dd[data-key=time_zone]")).to_have_text("Asia/Seoul (the store's time zone)")
        # The switch was the manager's language in the directory: back to Korean, as the other
        # tests of this running system (the staff app's) read them.
        page.click("#lang")
        manager_id = running_system.staff(MANAGER)["id"]
        wait_for(lambda: staff_language(running_system, manager_id) == "ko", timeout=10, page=page)
        assert not errors, errors
    finally:
        page.close()

    # The analyst reads no staff directory (nor notify's stores): "staff member", their own zone.
    page = browser.new_page(viewport=WIDE, locale="ko-KR", timezone_id=ABROAD)
    errors = watch_page_errors(page)
    try:
        sign_in_console(page, running_system, ANALYST)
        page.click("[data-testid=nav-cases]")
        page.select_option("#store", "store-gangnam")
        row = page.locator(f"[data-testid=case-list] tr[data-id='{complaint}']")
        expect(row).to_be_visible(timeout=15_000)
        row.locator("button.open-case").click()
        detail = page.locator("[data-testid=case-detail]")
        expect(detail).to_have_attribute("data-id", complaint)
        expect(detail.locator(".case-timeline li[data-kind=acknowledged]")).to_contain_text("확인 · 직원")
        expect(detail.locator(".case-timeline li[data-kind=acknowledged]")).not_to_contain_text(lead_name)
        expect(detail.locator("dd[data-key=time_zone]")).to_have_text(f"{ABROAD} (내 시간대)")
        expect(detail.locator(".case-timeline li[data-kind=acknowledged]")).to_contain_text(NEW_YORK)
        assert not errors, errors
    finally:
        page.close()


def test_a_reopened_case_and_the_answer_that_reopened_it_open_each_other(
    running_system: RunningSystem, browser: Browser
) -> None:
    """The walk-through found the customer's unhappy answer only on a separate case with no way
    there: the original's "reopened" step opens it, and it opens the original."""
    original = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": f"국이 식어서 나왔어요 {uuid.uuid4().hex[:6]}",
            "ratings": {"csat": 1},
        },
    )
    headers = login(running_system, LEAD)
    alert = wait_for(lambda: alert_of(running_system, headers, original), timeout=30)
    notify = running_system.url("notify")
    resolved = httpx.post(
        f"{notify}/v1/alerts/{alert['id']}/resolve",
        json={"outcome": "resolved", "note": "국 교체"},
        headers=headers,
    )
    assert resolved.status_code == 200, resolved.text
    url = wait_for(
        lambda: (feedback_item(running_system, original).get("follow_up") or {}).get("url"), timeout=30
    )
    answer = httpx.post(str(url), json={"csat": 1, "comment": "전화 한 통도 없었어요"})
    assert answer.status_code == 200, answer.text
    reopening = answer.json()["reopened_feedback_id"]

    page = browser.new_page(viewport=WIDE, locale="ko-KR")
    errors = watch_page_errors(page)
    try:
        sign_in_console(page, running_system, MANAGER)
        # The board's recovery rate says how many answers it is of (this one at least).
        expect(page.locator("[data-testid=tile-recovery] .sub")).to_contain_text(
            re.compile(r"응답 \d+건 기준")
        )
        page.click("[data-testid=nav-cases]")
        row = page.locator(f"[data-testid=case-list] tr[data-id='{original}']")
        expect(row).to_be_visible(timeout=15_000)
        row.click()
        detail = page.locator("[data-testid=case-detail]")
        expect(detail).to_have_attribute("data-id", original)
        step = detail.locator(".case-timeline li[data-kind=reopened]")
        step.get_by_role("button", name="답변 사례 열기").click()
        expect(detail).to_have_attribute("data-id", reopening)
        expect(detail.locator(".case-timeline li[data-kind=received]")).to_be_visible()
        back = detail.locator(".case-timeline li[data-kind=reopens]")
        expect(back).to_contain_text("후속 설문의 불만족 답변")
        back.get_by_role("button", name="원래 사례 열기").click()
        expect(detail).to_have_attribute("data-id", original)
        assert errors == []
    finally:
        page.close()
