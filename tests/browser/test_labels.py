"""Values said in the reader's words, not as codes (UI review): the console's status of a resolved
case and its timeline (the staff app's outcome labels, the services' fixed follow-up sentences in
Korean), the English labels of severity, sentiment and status, the staff app's "why this plan"
store format, and the hint tied to the disabled Resolve button while no outcome is picked."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import (
    LEAD,
    NEEDS_CHROMIUM,
    post_feedback,
    sign_in_console,
    signed_in_phone,
    wait_for,
    watch_page_errors,
)
from tests.conftest import RunningSystem
from tests.support.system import login
from voc.events.v1.events_pb2 import FollowUpSent
from voc_feedback.events import follow_up_message

pytestmark = NEEDS_CHROMIUM

MANAGER = "seoyeon@gangnam.demo"  # store_manager of store-gangnam (ko)
WIDE = {"width": 1280, "height": 1400}
SEVERITIES_EN = {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
SENTIMENTS_EN = {"negative": "Negative", "neutral": "Neutral", "positive": "Positive"}
NO_CONSENT = "the customer opted out of contact (contact_consent false)"


def complaint(system: RunningSystem) -> str:
    """A food-safety complaint at Gangnam (a restaurant): an urgent alert for its shift lead."""
    return post_feedback(
        system,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": f"국에서 머리카락이 나왔어요. 직원분도 사과 없이 가져가셨네요. {uuid.uuid4().hex[:6]}",
            "ratings": {"csat": 1},
        },
    )


def alert_of(system: RunningSystem, headers: dict[str, str], feedback_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        page = httpx.get(f"{system.url('notify')}/v1/alerts?limit=200", headers=headers).json()["alerts"]
        return next((a for a in page if a["feedback_id"] == feedback_id), None)

    alert: dict[str, Any] = wait_for(found, timeout=30)
    return alert


@pytest.fixture(scope="module")
def phone(browser: Browser, origin: str, running_system: RunningSystem) -> Iterator[Page]:
    """The shift lead's phone (Korean), signed in."""
    yield from signed_in_phone(browser, origin, running_system)


def test_why_this_plan_names_the_store_format_and_resolve_says_what_it_waits_for(
    phone: Page, origin: str, running_system: RunningSystem
) -> None:
    page = phone
    feedback_id = complaint(running_system)
    headers = login(running_system, LEAD)
    alert = alert_of(running_system, headers, feedback_id)
    rest = httpx.get(f"{origin}/v1/alerts/{alert['id']}", headers=headers).json()
    matched = [m for m in rest["plan"].get("matched") or [] if m["key"] == "store.format"]
    assert matched and matched[0]["values"] == ["restaurant"], rest["plan"]
    page.goto(f"{origin}/#/alerts/{alert['id']}")
    expect(page.locator(f'#detail[data-feedback-id="{feedback_id}"]')).to_be_visible()

    # Why this plan: "매장 형태: 식당" (it read "매장 형태: restaurant").
    why = page.locator("#plan-why li")
    expect(why.filter(has_text="매장 형태")).to_have_text(["매장 형태: 식당"])

    # The disabled button says why, tied to it, until an outcome is picked.
    button = page.locator("#resolve-btn")
    hint = page.locator("#resolve-hint")
    expect(button).to_be_disabled()
    expect(hint).to_be_visible()
    expect(hint).to_have_text("처리 결과를 먼저 선택하세요.")
    expect(button).to_have_attribute("aria-describedby", "resolve-hint")
    expect(button).to_have_accessible_description("처리 결과를 먼저 선택하세요.")
    page.select_option("#outcome", "compensated")
    expect(button).to_be_enabled()
    expect(hint).to_be_hidden()
    expect(button).not_to_have_attribute("aria-describedby", "resolve-hint")
    page.select_option("#outcome", "")
    expect(button).to_be_disabled()
    expect(hint).to_be_visible()
    expect(button).to_have_attribute("aria-describedby", "resolve-hint")


def test_the_english_staff_app_labels_severity_and_sentiment(
    phone: Page, origin: str, running_system: RunningSystem
) -> None:
    page = phone
    feedback_id = complaint(running_system)
    headers = login(running_system, LEAD)
    alert = alert_of(running_system, headers, feedback_id)
    rest = httpx.get(f"{origin}/v1/alerts/{alert['id']}", headers=headers).json()
    severity = rest["feedback"]["severity"]
    sentiment = (rest.get("classification") or {}).get("sentiment") or rest["feedback"]["sentiment"]
    page.goto(f"{origin}/#/alerts/{alert['id']}")
    expect(page.locator(f'#detail[data-feedback-id="{feedback_id}"]')).to_be_visible()

    def shown(term: str) -> Any:
        return (
            page.locator("dl.kvs .kv")
            .filter(has=page.locator("dt", has_text=re.compile(f"^{term}$")))
            .locator("dd")
        )

    page.click("#lang")
    try:
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(shown("Severity")).to_have_text(SEVERITIES_EN[severity])
        expect(shown("Sentiment")).to_have_text(SENTIMENTS_EN[sentiment])
        expect(page.locator("#plan-why li").filter(has_text="Store format")).to_have_text(
            ["Store format: Restaurant"]
        )
        expect(page.locator("#resolve-hint")).to_have_text("Pick an outcome first.")
    finally:
        page.click("#lang")  # the staff member's language (kept in the directory) back to Korean
        expect(page.locator("html")).to_have_attribute("lang", "ko")


def with_steps(steps: list[dict[str, Any]]) -> Any:
    """The case as feedback answers it, with follow-up steps notify would have added."""

    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["timeline"] = [*body["timeline"], *steps]
        route.fulfill(response=response, json=body)

    return handle


def test_the_console_labels_a_resolved_case_and_its_follow_up_steps(
    running_system: RunningSystem, browser: Browser
) -> None:
    feedback_id = complaint(running_system)
    headers = login(running_system, LEAD)
    alert = alert_of(running_system, headers, feedback_id)
    notify = running_system.url("notify")
    answer = httpx.post(
        f"{notify}/v1/alerts/{alert['id']}/resolve",
        json={"outcome": "compensated", "note": "국 교체"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    feedback_url = f"{running_system.url('feedback')}/v1/feedback/{feedback_id}"
    item = wait_for(
        lambda: (
            (i := httpx.get(feedback_url, headers=running_system.admin_headers).json())["status"]
            == "resolved"
            and i
        ),
        timeout=30,
    )
    at = item["timeline"][-1]["at"]
    in_an_hour = int(datetime.fromisoformat(at).timestamp() + 3600) * 1000
    steps = [
        {"at": at, "kind": "follow_up_sent", "actor": "notify",
         "detail": {"note": "follow-up sent by email", "channel": "email", "outcome": "sent", "reason": "",
                    "attempt": 1}},
        {"at": at, "kind": "follow_up_not_sent", "actor": "notify",
         "detail": {"note": f"follow-up not sent: {NO_CONSENT}", "channel": "", "outcome": "not_sent",
                    "reason": NO_CONSENT, "attempt": 0}},
        {"at": at, "kind": "follow_up_failed", "actor": "notify",
         "detail": {"note": "mailbox full (written by hand)", "channel": "sms", "outcome": "failed",
                    "reason": "mailbox full", "attempt": 3}},
        # The notes feedback writes, as it writes them (a held one, one before any channel).
        {"at": at, "kind": "follow_up_held", "actor": "notify",
         "detail": follow_up_message(FollowUpSent(outcome="held", reason="store quiet hours",
                                                  next_attempt_at_ms=in_an_hour), "e1").detail},
        {"at": at, "kind": "follow_up_retrying", "actor": "notify",
         "detail": follow_up_message(FollowUpSent(outcome="retrying", reason="profile unreachable",
                                                  attempt=2), "e2").detail},
    ]  # fmt: skip
    page = browser.new_page(viewport=WIDE, locale="ko-KR")
    errors = watch_page_errors(page)
    page.route(f"**/v1/feedback/{feedback_id}", with_steps(steps))
    try:
        sign_in_console(page, running_system, MANAGER)
        # Plan adherence names the resolved alert's plan by its title, its id beside (it said
        # "cleanliness-default" alone); actions' library is read with the manager's own token.
        detail = httpx.get(f"{notify}/v1/alerts/{alert['id']}", headers=headers).json()
        playbook_id = detail["plan"]["playbook_id"]
        served = httpx.get(
            f"{running_system.url('actions')}/v1/playbooks/{playbook_id}", headers=headers
        ).json()
        adherence = page.locator(f"[data-testid=adherence-by_playbook] tr[data-key='{playbook_id}'] td").first
        expect(adherence).to_contain_text(f" ({playbook_id})")
        expect(adherence).to_contain_text(served["title"]["ko"].split("{")[0].strip()[:10])
        page.click("[data-testid=nav-cases]")
        row = page.locator(f"[data-testid=case-list] tr[data-id='{feedback_id}']")
        expect(row).to_be_visible(timeout=15_000)
        expect(row.locator("td[data-status]")).to_have_text("해결")  # it read "resolved"
        row.click()
        detail = page.locator("[data-testid=case-detail]")
        expect(detail).to_have_attribute("data-id", feedback_id)
        expect(detail.locator("dd[data-key=status]")).to_have_text("해결")
        timeline = detail.locator(".case-timeline")
        # Who, by name and role (it read "staff:staff-gn-lead"), and the system as the system.
        lead = running_system.staff(LEAD)["name"]
        expect(timeline.locator("li[data-kind=resolved]")).to_contain_text(f"해결 · {lead} (시프트 리더)")
        # The outcome in the staff app's words ("보상 제공", not "보상").
        expect(timeline.locator("li[data-kind=resolved]")).to_contain_text(" · 보상 제공 · 국 교체")
        # The services' fixed sentences in Korean; what is not one of them, as written.
        sent = timeline.locator("li[data-kind=follow_up_sent]")
        expect(sent).to_contain_text("후속 메시지 발송 · 시스템 · 이메일로 보냈습니다")
        expect(sent).not_to_contain_text("follow-up")
        expect(sent).not_to_contain_text("sent ·")
        refused = timeline.locator("li[data-kind=follow_up_not_sent]").filter(has_text="거부")
        expect(refused).to_contain_text("보내지 않았습니다: 고객이 연락 수신을 거부함")
        expect(refused).not_to_contain_text("consent")
        expect(timeline.locator("li[data-kind=follow_up_failed]")).to_contain_text(
            "mailbox full (written by hand)"
        )
        held = timeline.locator("li[data-kind=follow_up_held]")
        expect(held).to_contain_text("보류: 매장의 알림 금지 시간. 끝나면 보냅니다")
        expect(held).not_to_contain_text("held")
        expect(held).to_contain_text(" · 다음 시도: ")  # when it goes out, in the store's zone
        retrying = timeline.locator("li[data-kind=follow_up_retrying]")
        expect(retrying).to_contain_text("아직 보내지 못해 다시 시도합니다: profile unreachable")
        expect(retrying).not_to_contain_text("by none")
        # The case's follow-up fact follows notify's last word on the message, not "awaiting an answer".
        expect(detail.locator("dd[data-key=follow_up]")).to_have_text("후속 메시지 재시도")

        # In English: the labels, capitalized, drawn again without reopening the case.
        page.click("#lang")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        severity = item["classification"]["severity"]
        sentiment = item["classification"]["sentiment"]
        expect(detail.locator("dd[data-key=status]")).to_have_text("Resolved")
        expect(detail.locator("dd[data-key=severity]")).to_have_text(SEVERITIES_EN[severity])
        expect(row.locator("td[data-status]")).to_have_text("Resolved")
        expect(row.locator("td").nth(3)).to_have_text(SENTIMENTS_EN[sentiment])
        expect(timeline.locator("li[data-kind=resolved]")).to_contain_text(" · Compensated · 국 교체")
        expect(timeline.locator("li[data-kind=follow_up_sent]")).to_contain_text("follow-up sent by E-mail")
        # The services' sentences in plainer English too: no "(contact_consent false)".
        refused_en = timeline.locator("li[data-kind=follow_up_not_sent]").filter(has_text="opted out")
        expect(refused_en).to_contain_text("follow-up not sent: the customer opted out of contact")
        expect(refused_en).not_to_contain_text("contact_consent")
        expect(detail.locator("dd[data-key=follow_up]")).to_have_text("Follow-up retrying")
        assert not errors, errors
    finally:
        page.close()
        # The switch wrote English as the manager's language in the directory, which the staff
        # app then speaks to them in the session's later tests: Korean again, as seeded.
        httpx.put(
            f"{running_system.url('notify')}/v1/auth/language",
            json={"language": "ko"},
            headers=login(running_system, MANAGER),
        )
