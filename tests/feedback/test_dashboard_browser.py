"""The manager dashboard in headless Chromium against the running system: it loads with seeded
data, its SVG charts draw that data, a new feedback item shows up live in the open-alert list,
and the page switches to English, all without a Content-Security-Policy violation (as the
follow-up page). Screenshots go to tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import sign_in_console, watch_page_errors
from tests.conftest import RunningSystem
from tests.support.system import post_feedback
from voc_cli.demo import STORES

CHROMIUM = "/usr/bin/chromium"
CX_ADMIN = "cx@hq.demo"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]

SEED = [
    ("store-gangnam", "직원이 너무 불친절했어요", {"csat": 1, "nps": 2}),
    ("store-gangnam", "음식이 정말 맛있어요! 존맛", {"csat": 5, "nps": 10}),
    ("store-hongdae", "화장실이 더러워요 ㅠㅠ", {"csat": 2, "nps": 5}),
    ("store-busan", "Waited 30 minutes at the counter", {"csat": 2, "nps": 4}),
    ("store-busan", "Friendly staff and quick service", {"csat": 5, "nps": 9}),
]


def test_dashboard_draws_seeded_data_and_updates_live(running_system: RunningSystem, artifacts: Path) -> None:
    feedback = running_system.url("feedback")
    stores = [{"id": s["id"], "name": s["name"], "area_id": s["area_id"]} for s in STORES]
    assert (
        httpx.put(
            f"{feedback}/v1/admin/stores", json=stores, headers=running_system.admin_headers
        ).status_code
        == 200
    )
    for store_id, text, ratings in SEED:
        r = post_feedback(
            running_system,
            {"store_id": store_id, "channel": "app", "text": text, "ratings": ratings},
            store_id,
        )
        assert r.status_code == 202, r.text

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="ko-KR")
            errors = watch_page_errors(page)
            # The CX team's own sign-in (every store), no admin token in the browser (#20 §2).
            sign_in_console(page, running_system, CX_ADMIN, lang="ko")
            expect(page.locator("h1")).to_have_text("고객의 소리 대시보드")
            assert "token" not in page.url

            trend_bars = page.locator("[data-testid=trend-chart] rect.bar")
            assert trend_bars.count() >= 1
            # Each scale says what it measures (the review: "11" and "+100" alone).
            expect(page.locator("[data-testid=trend-axis-volume]")).to_have_text("일별 건수 (막대)")
            expect(page.locator("[data-testid=trend-axis-index]")).to_have_text("감성 지수 (선)")
            assert sum(
                int(v or 0) for v in trend_bars.evaluate_all("els => els.map(e => e.dataset.volume)")
            ) >= len(SEED)
            for store in ("store-gangnam", "store-hongdae", "store-busan"):
                expect(
                    page.locator(f"[data-testid=stores-chart] rect[data-store={store}][data-nps]")
                ).to_have_count(1)
            expect(page.locator("[data-testid=stores-chart] text", has_text="강남역점")).to_have_count(1)
            expect(
                page.locator("[data-testid=category-chart] rect[data-category=staff_attitude]")
            ).to_have_count(1)
            expect(page.locator("[data-testid=category-chart] text", has_text="직원 태도")).to_have_count(1)
            # 14: the follow-up messages sent, those never delivered and the answer rate joined
            # them (#19), and the FYI alerts (praise), which are no open cases, are counted apart.
            expect(page.locator("[data-testid=loop-kpis] dt")).to_have_count(14)
            expect(page.locator("[data-testid=loop-kpis] dt", has_text="후속 메시지 발송")).to_have_count(1)
            expect(
                page.locator("[data-testid=loop-kpis] dt", has_text="후속 메시지 전달 실패")
            ).to_have_count(1)
            # Plan adherence (#18): the section is drawn, per store and per playbook.
            expect(page.locator("[data-testid=adherence-total]")).to_contain_text("이행률")
            expect(page.locator("[data-testid=adherence-by_store] th").first).to_have_text("매장별")
            expect(page.locator("[data-testid=adherence-by_playbook]")).to_be_attached()
            volume_before = int(page.locator("[data-testid=tile-volume] .value").inner_text())
            assert volume_before >= len(SEED)
            page.screenshot(path=str(artifacts / "dashboard-1-ko.png"), full_page=True)

            # A new complaint appears in the open list without a reload.
            r = post_feedback(
                running_system,
                {
                    "store_id": "store-hongdae",
                    "channel": "kiosk",
                    "text": "식중독 같아요, 배가 너무 아파요",
                    "ratings": {"csat": 1},
                },
                "store-hongdae",
            )
            new_id = r.json()["id"]
            row = page.locator(f"#cases tr[data-id='{new_id}']")
            expect(row).to_have_count(1, timeout=10_000)
            expect(row.locator("td").nth(1)).to_have_text("홍대입구점")
            expect(page.locator("[data-testid=tile-volume] .value")).not_to_have_text(str(volume_before))
            # A classification the model is not sure of (#17) is flagged in the open list, and the
            # uncertain tile counts such items in the current filter (as the API does).
            r = post_feedback(
                running_system,
                {"store_id": "store-hongdae", "channel": "kiosk", "text": "La comida estaba muy fría"},
                "store-hongdae",
            )
            unsure = page.locator(f"#cases tr[data-id='{r.json()['id']}']")
            expect(unsure).to_have_count(1, timeout=10_000)
            expect(unsure.locator(".uncertain")).to_have_text("분류 불확실 — 원문 확인")
            expect(row.locator(".uncertain")).to_have_count(0)  # the food-poisoning case is clear
            counted = httpx.get(f"{feedback}/v1/analytics", headers=running_system.admin_headers).json()[
                "uncertain"
            ]
            assert counted >= 1
            expect(page.locator("[data-testid=tile-uncertain] .value")).to_have_text(str(counted))
            expect(page.locator("[data-testid=tile-uncertain] .label")).to_have_text("분류 불확실")
            page.screenshot(path=str(artifacts / "dashboard-2-live.png"), full_page=True)

            page.click("#lang")
            expect(page.locator("h1")).to_have_text("Voice of the customer")
            expect(
                page.locator("[data-testid=category-chart] text", has_text="Staff attitude")
            ).to_have_count(1)
            expect(unsure.locator(".uncertain")).to_have_text("Uncertain — check the text")
            expect(page.locator("[data-testid=tile-uncertain] .label")).to_have_text(
                "Uncertain classifications"
            )
            page.screenshot(path=str(artifacts / "dashboard-3-en.png"), full_page=True)

            # A wrong password gets the sign-in form again with a message, not a broken page.
            other = browser.new_page(locale="en-US")
            other.goto(f"{feedback}/dashboard#lang=en")
            other.fill("#email", CX_ADMIN)
            other.fill("#password", "not-the-password")
            other.click("#login button[type=submit]")
            expect(other.locator("#login-error")).to_have_text("Wrong e-mail or password.")
            expect(other.locator("#board")).to_be_hidden()
            assert errors == []

            # The follow-up pages are styled from their stylesheet (no inline style under the CSP).
            survey = browser.new_page(viewport={"width": 390, "height": 844})
            survey.on(
                "console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None
            )
            survey.goto(f"{feedback}/f/made-up?lang=en")
            expect(survey.locator("h1")).to_have_text("This link cannot be opened")
            expect(survey.locator("main")).to_have_css("max-width", "480px")
            assert errors == []
        finally:
            browser.close()


def test_the_dashboard_shows_pattern_alerts_by_kind(running_system: RunningSystem, artifacts: Path) -> None:
    """Alerts have a kind on the dashboard too (#18 §3): three customers complaining about the wait
    at one store within the hour make a pattern alert, listed with its kind and its title in the
    reader's language, from notify with the signed-in staff member's own token."""
    ids = []
    for i in range(3):
        r = post_feedback(
            running_system,
            {"store_id": "store-busan", "channel": "kiosk", "ratings": {"csat": 1},
             "text": f"We waited {40 + i} minutes and nobody came to take our order"},
            "store-busan",
        )  # fmt: skip
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="ko-KR")
            errors = watch_page_errors(page)
            sign_in_console(page, running_system, CX_ADMIN, lang="ko")
            row = page.locator("[data-testid=store-alerts] tr[data-kind=pattern]").first
            expect(row).to_be_attached(timeout=15_000)
            expect(row.locator("td.kind")).to_have_text("패턴")
            expect(row.locator("td.text")).to_contain_text("[")
            page.screenshot(path=str(artifacts / "dashboard-store-alerts-ko.png"), full_page=True)
            page.click("#lang")
            expect(row.locator("td.kind")).to_have_text("Pattern")
            assert errors == []
        finally:
            browser.close()
