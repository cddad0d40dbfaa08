"""The delivery watchdog in the running system (#23), as `python -m voc_notify` wires it: notify
started with `VOC_NOTIFY_WATCHDOG_SECONDS=2` and `VOC_SMTP_URL` at a real SMTP server on loopback;
the shift lead's only phone is a subscription at the push-service emulator, which accepts every
push and shows none (a push service silently dropping). An urgent complaint reaches the phone,
no "shown" comes back, and the lead gets the page by e-mail; the store manager's fleet view
shows the phone as suspect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DatabaseFactory, RunningSystem, system_running
from tests.support.metrics import Scrape
from tests.support.system import login, post_feedback, wait_for
from voc_cli.mail_sink import MailSink
from voc_cli.push_emulator import PushEmulator

LEAD = "minji@gangnam.demo"
MANAGER = "seoyeon@gangnam.demo"


@pytest.fixture(scope="module")
def mail() -> Iterator[MailSink]:
    sink = MailSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="module")
def watched(
    tmp_path_factory: pytest.TempPathFactory, databases: DatabaseFactory, mail: MailSink
) -> Iterator[RunningSystem]:
    settings = {
        "VOC_NOTIFY_WATCHDOG_SECONDS": "2",
        "VOC_SMTP_URL": mail.url,
        "VOC_MAIL_FROM": "Frontline VoC <pager@voc.test>",
    }
    data_dir: Path = tmp_path_factory.mktemp("watchdog")
    with system_running(data_dir, None, databases, extra_env=settings, prefix="watchdog_") as running:
        yield running


def test_a_push_accepted_but_never_shown_is_paged_by_email(
    watched: RunningSystem, push_emulator: PushEmulator, mail: MailSink
) -> None:
    notify = watched.url("notify")
    before = Scrape.of(notify)
    phone = push_emulator.new_subscription(label="silent phone")
    registered = httpx.post(f"{notify}/v1/devices", json=phone, headers=login(watched, LEAD))
    assert registered.status_code == 201, registered.text
    answer = post_feedback(
        watched,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": "김치찌개에서 머리카락이 나왔어요. 위생 관리가 걱정됩니다.",
            "ratings": {"csat": 1},
        },
    )
    assert answer.status_code == 202, answer.text
    feedback_id = answer.json()["id"]
    push = wait_for(
        lambda: next(
            (
                p
                for p in push_emulator.received(push_emulator.subscription_id(phone))
                if (p.json or {}).get("feedback_id") == feedback_id
            ),
            None,
        ),
        timeout=20,
    )
    assert push.json["priority"] == "urgent"

    page = wait_for(lambda: next((m for m in mail.received() if m.rcpt_tos == (LEAD,)), None), timeout=30)
    assert page.mail_from == "pager@voc.test"
    assert page.subject == push.json["title"]  # the lock screen's words, in the lead's language
    assert f"/#/alerts/{push.json['alert_id']}" in page.part("plain")
    assert "휴대폰에 이 긴급 알림이 표시되지 않아" in page.part("plain")
    assert len([m for m in mail.received() if m.rcpt_tos == (LEAD,)]) == 1

    fleet = httpx.get(f"{notify}/v1/fleet", headers=login(watched, MANAGER)).json()
    lead = next(p for p in fleet["staff"] if p["staff_id"] == "staff-gn-lead")
    assert "suspect_device" in lead["problems"] and not lead["can_receive"]
    assert lead["devices"][0]["suspect_since"] is not None
    # What the watchdog did shows on notify's /metrics.
    after = Scrape.of(notify)
    for name, labels in (
        ("voc_push_watchdog_total", {"step": "overdue"}),
        ("voc_push_watchdog_total", {"step": "suspect"}),
        ("voc_fallback_pages_total", {"status": "sent"}),
    ):
        assert after.value(name, **labels) - before.value(name, **labels) >= 1, (name, labels)
