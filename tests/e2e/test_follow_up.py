"""The follow-up loop end to end (#19), against the system running as processes with its own
nats-server, a real SMTP server on loopback (aiosmtpd) and an SMS gateway emulator: a resolved
case's customer gets the link by e-mail (or SMS when only a phone is known), in their language;
answering it unhappy reopens the case and pages again; a customer who never stated consent gets
it, one who opted out does not. Quiet hours move the send; an opt-out, an erased customer, a
refused address are recorded with their reason (and the address is not mailed again); an SMTP server that is
down gets the mail once it is back; a mail that bounces later (the relay's report, piped from
the bounce mailbox) and the gateway's delivery reports say whether the message reached the
customer. Every step is on the case timeline."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import DatabaseFactory, RunningSystem
from tests.support.sms_gateway import SmsGateway
from tests.support.system import login, post_feedback, wait_for
from tests.support.webhook_receiver import WebhookReceiver
from voc_cli import demo
from voc_cli.mail_sink import MailSink, ReceivedMail
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import SERVICES, System, SystemConfig, free_port
from voc_notify import follow_ups

TOKEN, SENDER, TEMPLATE = "gw-e2e-token", "0215880000", "VOC_FOLLOWUP_01"
ADMIN = "cx@hq.demo"  # cx_admin: acknowledges and resolves at every store
LEAD = "minji@gangnam.demo"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/f/[A-Za-z0-9_.\-]+")
REPORT_TOKEN = "delivery-report-token-e2e-0123456789abcdef"
BOUNCES = "bounces@demo.local"  # the envelope sender: where relays send their reports
# Taken by the relay, refused afterwards by the recipient's server.
GONE, GONE_TOO = "gone.later@example.com", "gone.too@example.com"


class BouncePipe:
    """What the bounce mailbox is piped to in production (`curl --data-binary @- …`, docs/NOTIFY.md):
    each report the relay writes is posted to notify's delivery-report route as it arrives."""

    def __init__(self) -> None:
        self.url = ""
        self.answers: list[httpx.Response] = []

    def __call__(self, report: bytes) -> None:
        threading.Thread(target=self._post, args=(report,), daemon=True).start()

    def _post(self, report: bytes) -> None:
        headers = {"Authorization": f"Bearer {REPORT_TOKEN}", "Content-Type": "message/rfc822"}
        for _ in range(20):  # a 409 (the send still being recorded) is tried again, as curl --retry
            answer = httpx.post(self.url, content=report, headers=headers)
            self.answers.append(answer)
            if answer.status_code != 409:
                return
            time.sleep(0.25)


@pytest.fixture(scope="module")
def bounce_pipe() -> BouncePipe:
    return BouncePipe()


@pytest.fixture(scope="module")
def smtp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def mailbox(smtp_port: int, bounce_pipe: BouncePipe) -> Iterator[MailSink]:
    sink = MailSink(
        port=smtp_port, refuse=("bounce@example.com",), bounce=(GONE, GONE_TOO), on_bounce=bounce_pipe
    ).start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def gateway() -> Iterator[SmsGateway]:
    with SmsGateway(token=TOKEN, sender=SENDER, template_id=TEMPLATE) as server:
        yield server


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory,
    databases: DatabaseFactory,
    mailbox: MailSink,
    gateway: SmsGateway,
    bounce_pipe: BouncePipe,
) -> Iterator[RunningSystem]:
    """The four services with both customer channels, no delay and a short back-off; a
    nats-server of their own (the session's system has the same durable consumers)."""
    data_dir = tmp_path_factory.mktemp("follow-up-system")
    config = SystemConfig.free_ports(
        data_dir,
        database_urls={name: databases.url(f"fu_{name}") for name in SERVICES},
        push_allowed_hosts="127.0.0.1:*,localhost:*",
        restart=False,
        log_format="json",
        extra_env={
            "VOC_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",
            "VOC_MAIL_FROM": "Frontline VoC <voc@demo.local>",
            "VOC_MAIL_BOUNCE_ADDRESS": BOUNCES,
            "VOC_DELIVERY_REPORT_TOKEN": REPORT_TOKEN,
            "VOC_SMS_GATEWAY_URL": gateway.url,
            "VOC_SMS_GATEWAY_TOKEN": TOKEN,
            "VOC_SMS_TEMPLATE_ID": TEMPLATE,
            "VOC_SMS_SENDER": SENDER,
            "VOC_SMS_ALLOWED_HOSTS": f"127.0.0.1:{gateway.port}",
            "VOC_FEEDBACK_FOLLOW_UP_DELAY_SECONDS": "0",
            "VOC_FOLLOW_UP_RETRY_BASE_SECONDS": "0.5",
            "VOC_FOLLOW_UP_RETRY_CAP_SECONDS": "1",
            "VOC_FOLLOW_UP_POLL_SECONDS": "0.2",
            "VOC_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:*",
        },
    )
    running = System(config)
    try:
        running.start(timeout=90)
        urls = {name: running.url(name) for name in ("feedback", "profile", "actions", "notify")}
        bounce_pipe.url = f"{urls['notify']}/v1/follow-ups/delivery-reports"
        gateway.report_to(bounce_pipe.url, REPORT_TOKEN)  # the provider's delivery-report callback
        credentials = demo.seed(
            urls=urls, admin_token=running.admin_token, credentials_path=data_dir / "demo-credentials.json"
        )
        yield RunningSystem(running, credentials)
    finally:
        running.stop()


def customer(system: RunningSystem, **fields: Any) -> str:
    """A CRM customer of this test's own (a loyalty id nobody else uses); its loyalty id."""
    loyalty_id = f"L-FU-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{system.url('profile')}/v1/customers",
        headers=system.admin_headers,
        json={"customers": [{"loyalty_id": loyalty_id, "tier": "gold", **fields}]},
    )
    assert response.status_code == 200, response.text
    return loyalty_id


def case(system: RunningSystem, feedback_id: str) -> dict[str, Any]:
    response = httpx.get(f"{system.url('feedback')}/v1/feedback/{feedback_id}", headers=system.admin_headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def complain(system: RunningSystem, loyalty_id: str, *, store_id: str = "store-gangnam") -> str:
    """A complaint from the customer, linked to them by profile; the feedback id."""
    posted = post_feedback(
        system,
        {
            "store_id": store_id,
            "channel": "kiosk",
            "text": "국이 너무 짜고 식어서 나왔어요.",
            "ratings": {"csat": 1},
            "customer": {"loyalty_id": loyalty_id},
        },
        store_id=store_id,
    )
    assert posted.status_code == 202, posted.text
    feedback_id: str = posted.json()["id"]
    wait_for(lambda: case(system, feedback_id)["customer_id"])
    return feedback_id


def resolve(system: RunningSystem, feedback_id: str) -> str:
    """The feedback's alert resolved by the CX admin; the feedback id."""
    headers = login(system, ADMIN)
    notify = system.url("notify")

    def alert_id() -> str | None:
        alerts = httpx.get(f"{notify}/v1/alerts", headers=headers, params={"limit": 200}).json()["alerts"]
        return next((a["id"] for a in alerts if a["feedback_id"] == feedback_id), None)

    found = wait_for(alert_id, timeout=20)
    done = httpx.post(
        f"{notify}/v1/alerts/{found}/resolve", headers=headers, json={"outcome": "resolved", "note": "e2e"}
    )
    assert done.status_code == 200, done.text
    return feedback_id


def follow_up_steps(system: RunningSystem, feedback_id: str, *, until: str) -> list[dict[str, Any]]:
    """The case's timeline entries of notify's follow-up messages once one of kind `until` is
    there (not the link's own `follow_up_requested`)."""

    def steps() -> list[dict[str, Any]] | None:
        entries = [
            t
            for t in case(system, feedback_id)["timeline"]
            if t["kind"].startswith("follow_up_") and t["kind"] != "follow_up_requested"
        ]
        return entries if any(t["kind"] == until for t in entries) else None

    return wait_for(steps, timeout=30)


def mail_for(mailbox: MailSink, to: str) -> list[ReceivedMail]:
    return [m for m in mailbox.received() if to in m.rcpt_tos]


def test_resolved_case_mails_the_link_and_an_unhappy_answer_pages_again(
    system: RunningSystem, mailbox: MailSink, push_emulator: PushEmulator, webhook_receiver: WebhookReceiver
) -> None:
    hooks = f"{system.url('notify')}/v1/admin/webhooks"
    endpoint = httpx.post(
        hooks,
        headers=system.admin_headers,
        json={"url": webhook_receiver.url("/loop"), "events": ["follow_up.sent", "follow_up.answered"]},
    )
    assert endpoint.status_code == 201, endpoint.text
    headers = login(system, LEAD)
    subscription = push_emulator.new_subscription(label="follow-up lead")
    device = httpx.post(f"{system.url('notify')}/v1/devices", json=subscription, headers=headers)
    assert device.status_code == 201, device.text
    address = f"kim.{uuid.uuid4().hex[:6]}@example.com"
    loyalty_id = customer(system, email=address, name="김민수", contact_consent=True, preferred_language="ko")
    feedback_id = resolve(system, complain(system, loyalty_id))

    (mail,) = wait_for(lambda: mail_for(mailbox, address), timeout=30)
    assert mail.subject == "[강남역점] 방문해 주셔서 감사합니다. 문제는 잘 해결되었나요?"
    assert mail.message.get_content_type() == "multipart/alternative"
    link = LINK.search(mail.part("plain"))
    assert link is not None and f'href="{link.group(0)}"' in mail.part("html")
    steps = follow_up_steps(system, feedback_id, until="follow_up_sent")
    sent = next(t for t in steps if t["kind"] == "follow_up_sent")
    assert sent["detail"]["note"] == "follow-up sent by email" and sent["detail"]["channel"] == "email"
    assert sent["detail"]["recipient"] == "k***@example.com" and address not in str(case(system, feedback_id))
    assert [t["kind"] for t in steps].count("follow_up_sent") == 1
    # An outside system hears it, signed (checked by `standardwebhooks`), the address masked.
    webhook_receiver.wait_for(1, "/loop")
    (heard,) = [
        b
        for b in webhook_receiver.verified(endpoint.json()["secret"], "/loop")
        if b["data"]["feedback_id"] == feedback_id
    ]
    assert heard["type"] == "follow_up.sent" and heard["data"]["channel"] == "email"
    assert heard["data"]["recipient"] == "k***@example.com" and address not in str(heard)
    assert "at_ms" not in heard["data"] and heard["data"]["at"].endswith("Z")  # ISO, as every *_at

    # The link works: the page opens, and an unhappy answer reopens the case and pages again.
    page = httpx.get(link.group(0))
    assert page.status_code == 200 and "강남역점" in page.text
    token = link.group(0).rsplit("/", 1)[1]
    answer = httpx.post(f"{system.url('feedback')}/f/{token}", json={"csat": 1, "comment": "그대로예요"})
    assert answer.status_code == 200, answer.text
    reopened_id = answer.json()["reopened_feedback_id"]
    repage = wait_for(
        lambda: next((p for p in push_emulator.received() if p.json.get("feedback_id") == reopened_id), None)
    )
    assert repage.json["alert_id"]
    # Staff read it as the case reopened, not a new complaint (apps review).
    assert "재오픈 · " in repage.json["title"], repage.json
    # One incident is one complaint: the answer's alert reads no repeat issue (UX review: it said
    # "반복 불만 2회" and the repeat modifier's steps).
    detail = httpx.get(f"{system.url('notify')}/v1/alerts/{repage.json['alert_id']}", headers=headers).json()
    signals = detail["context"]["signals"]
    assert signals["repeat_issue"] is False and signals["complaint_count_90d"] == 1, signals
    assert "modifier-repeat-issue" not in detail["plan"]["modifiers"]
    assert "modifier-reopened" in detail["plan"]["modifiers"]
    # the follow-up's script opens the plan, not the first response's apology and offer again
    opening = detail["plan"]["script"].split(".")[0]
    assert "후속 설문에 답해" in opening or "answering our follow-up" in opening, detail["plan"]["script"]
    assert wait_for(lambda: case(system, feedback_id)["status"] == "reopened")
    assert len(mail_for(mailbox, address)) == 1  # one message per case
    answered = webhook_receiver.wait_for(2, "/loop")
    kinds = [b["type"] for b in webhook_receiver.verified(endpoint.json()["secret"], "/loop")]
    assert kinds == ["follow_up.sent", "follow_up.answered"], (kinds, answered)
    httpx.delete(f"{hooks}/{endpoint.json()['id']}", headers=system.admin_headers)
    # Put right a second time: the customer is asked about the second try, not sent the first
    # message word for word; the mail says until when the link takes an answer.
    resolve(system, reopened_id)
    first, again = wait_for(lambda: (m := mail_for(mailbox, address)) and len(m) == 2 and m, timeout=30)
    assert again.subject == "[강남역점] 다시 알려 주셔서 감사합니다. 이번에는 잘 해결되었나요?"
    assert "이번에는 잘 해결되었나요?" in again.part("plain") and "1회성" not in again.part("plain")
    assert re.search(r"답변 링크는 \d{1,2}월 \d{1,2}일까지 열립니다\.", first.part("plain")), first.part(
        "plain"
    )
    assert 'name="viewport"' in again.part("html")
    # The dashboard's loop KPIs count the message and the answer.
    analytics = httpx.get(
        f"{system.url('feedback')}/v1/analytics",
        params={"store_id": "store-gangnam"},
        headers=system.admin_headers,
    ).json()["loop"]
    assert analytics["follow_ups_messaged"] >= 1 and analytics["follow_ups_answered"] >= 1
    assert analytics["follow_up_answer_rate"] > 0 and analytics["recovery_rate"] is not None


def test_one_resolution_of_merged_repeats_mails_the_customer_once(
    system: RunningSystem, mailbox: MailSink
) -> None:
    """Three complaints of one customer fold into one alert; resolving it closed three cases and
    each sent the customer the survey (three identical messages). The latest item asks; the
    earlier cases close without a survey of their own."""
    address = f"lee.{uuid.uuid4().hex[:6]}@example.com"
    loyalty_id = customer(system, email=address, name="이서준", contact_consent=True, preferred_language="ko")
    first = complain(system, loyalty_id)
    wait_for(lambda: case(system, first)["status"] == "alerted")
    repeats = [complain(system, loyalty_id) for _ in range(2)]
    for feedback_id in repeats:
        wait_for(lambda f=feedback_id: case(system, f)["status"] == "alerted")  # folded into the alert
    resolve(system, first)
    steps = follow_up_steps(system, repeats[-1], until="follow_up_sent")
    assert [t["kind"] for t in steps].count("follow_up_sent") == 1
    for feedback_id in (first, repeats[0], repeats[-1]):
        wait_for(lambda f=feedback_id: case(system, f)["status"] == "resolved")
    time.sleep(2)  # the other cases' surveys, were any opened, go out at once (no delay here)
    assert len(mail_for(mailbox, address)) == 1
    for feedback_id in (first, repeats[0]):
        timeline = case(system, feedback_id)["timeline"]
        assert not [t for t in timeline if t["kind"].startswith("follow_up")]
        # The resolution says where the survey went, so a manager does not read a gap.
        (resolved,) = [t for t in timeline if t["kind"] == "resolved"]
        assert resolved["detail"]["follow_up"] == "asked once for the alert, with its latest feedback"
        assert resolved["detail"]["note"] == "e2e"  # the staff member's own note stays
    (latest,) = [t for t in case(system, repeats[-1])["timeline"] if t["kind"] == "resolved"]
    assert "follow_up" not in latest["detail"]


def test_only_a_phone_known_goes_by_sms_through_the_gateway(
    system: RunningSystem, gateway: SmsGateway
) -> None:
    phone = f"010{uuid.uuid4().int % 10**8:08d}"
    feedback_id = resolve(system, complain(system, customer(system, phone=phone, contact_consent=True)))
    steps = follow_up_steps(system, feedback_id, until="follow_up_sent")
    assert steps[-1]["detail"]["channel"] == "sms" and steps[-1]["detail"]["recipient"] == f"***{phone[-4:]}"
    (request,) = [r for r in gateway.accepted() if r.idempotency_key == f"follow-up.{feedback_id}"]
    assert request.body["to"] in (phone, "+82" + phone[1:]) and request.body["template_id"] == TEMPLATE
    assert LINK.search(request.text) and request.body["variables"]["store"] == "강남역점"


def test_an_opt_out_and_erasure_send_nothing_and_the_case_says_why(
    system: RunningSystem, mailbox: MailSink
) -> None:
    declined = f"no.{uuid.uuid4().hex[:6]}@example.com"
    feedback_id = resolve(system, complain(system, customer(system, email=declined, contact_consent=False)))
    (step,) = follow_up_steps(system, feedback_id, until="follow_up_not_sent")
    assert step["detail"]["note"] == f"follow-up not sent: {follow_ups.OPTED_OUT}"

    # Erased between the complaint and the follow-up: profile says so at send time.
    erased_address = f"gone.{uuid.uuid4().hex[:6]}@example.com"
    feedback_id = complain(system, customer(system, email=erased_address, contact_consent=True))
    customer_id = case(system, feedback_id)["customer_id"]
    erased = httpx.delete(f"{system.url('profile')}/v1/customers/{customer_id}", headers=system.admin_headers)
    assert erased.status_code == 200, erased.text
    resolve(system, feedback_id)
    (step,) = follow_up_steps(system, feedback_id, until="follow_up_not_sent")
    assert step["detail"]["note"] == "follow-up not sent: the customer was erased"
    assert mail_for(mailbox, declined) == [] and mail_for(mailbox, erased_address) == []


def test_a_customer_who_never_said_gets_the_link_at_the_address_given_with_the_feedback(
    system: RunningSystem, mailbox: MailSink
) -> None:
    """Not in the CRM: profile creates the customer from the feedback's e-mail, consent never
    stated. The reply to their own complaint goes (only an opt-out holds it back)."""
    address = f"walk.in.{uuid.uuid4().hex[:6]}@example.com"
    posted = post_feedback(
        system,
        {
            "store_id": "store-gangnam",
            "channel": "web",
            "text": "주문한 메뉴가 30분 넘게 안 나왔어요.",
            "ratings": {"csat": 1},
            "customer": {"email": address},
        },
        store_id="store-gangnam",
    )
    assert posted.status_code == 202, posted.text
    feedback_id = resolve(system, posted.json()["id"])
    steps = follow_up_steps(system, feedback_id, until="follow_up_sent")
    assert steps[-1]["detail"]["channel"] == "email", steps
    customer_id = case(system, feedback_id)["customer_id"]
    record = httpx.get(f"{system.url('profile')}/v1/customers/{customer_id}", headers=system.admin_headers)
    assert record.status_code == 200 and record.json()["contact_consent"] is None, record.text
    (mail,) = wait_for(lambda: mail_for(mailbox, address) or None, timeout=20)
    assert LINK.search(mail.part("plain"))


def test_quiet_hours_hold_the_message_until_they_end(system: RunningSystem, mailbox: MailSink) -> None:
    seoul = ZoneInfo("Asia/Seoul")
    local = datetime.now(seoul)
    start, end = (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=2)).strftime("%H:%M"),
    )
    store = next(s for s in demo.STORES if s["id"] == "store-hongdae")
    put = httpx.put(
        f"{system.url('notify')}/v1/admin/stores",
        headers=system.admin_headers,
        json=[{**store, "quiet_start": start, "quiet_end": end}],
    )
    assert put.status_code == 200, put.text
    address = f"night.{uuid.uuid4().hex[:6]}@example.com"
    try:
        loyalty_id = customer(system, email=address, contact_consent=True)
        feedback_id = resolve(system, complain(system, loyalty_id, store_id="store-hongdae"))
        (held,) = follow_up_steps(system, feedback_id, until="follow_up_held")
        ends = datetime.combine(local.date(), datetime.strptime(end, "%H:%M").time(), tzinfo=seoul)
        if ends <= local:
            ends += timedelta(days=1)
        assert held["detail"]["next_attempt_at"] == pytest.approx(ends.timestamp(), abs=1)
        assert held["detail"]["note"] == "follow-up held: store quiet hours; sent when they end"
        time.sleep(1.5)  # several passes of the worker: nothing goes out in quiet hours
        assert mail_for(mailbox, address) == []
    finally:
        httpx.put(f"{system.url('notify')}/v1/admin/stores", headers=system.admin_headers, json=[store])


def test_a_refused_address_fails_once_with_its_reason_and_is_not_mailed_again(
    system: RunningSystem, mailbox: MailSink
) -> None:
    loyalty_id = customer(system, email="bounce@example.com", contact_consent=True)
    feedback_id = resolve(system, complain(system, loyalty_id))
    (failed, nowhere) = follow_up_steps(system, feedback_id, until="follow_up_not_sent")
    assert failed["detail"]["note"].startswith("follow-up by email failed: recipient refused: 550 5.1.1")
    assert failed["detail"]["attempt"] == 1
    # SMS is configured: the case's reply would go on by SMS, but profile knows no phone.
    assert "the e-mail bounced; no phone" in nowhere["detail"]["note"]
    time.sleep(1.0)  # several passes of the worker, a back-off's worth: never tried again
    assert [t["kind"] for t in follow_up_steps(system, feedback_id, until="follow_up_failed")] == [
        "follow_up_failed",
        "follow_up_not_sent",
    ]
    # The address is suppressed (a hard bounce, 5.1.1): the customer's next case does not mail it.
    second = resolve(system, complain(system, loyalty_id))
    (skipped,) = follow_up_steps(system, second, until="follow_up_not_sent")
    assert "the e-mail address bounced before (5.1.1 on " in skipped["detail"]["note"]
    suppressed = httpx.post(
        f"{system.url('notify')}/v1/admin/mail-suppressions/search",
        json={"email": "bounce@example.com"},
        headers=system.admin_headers,
    ).json()["suppressions"]
    assert [s["feedback_id"] for s in suppressed] == [feedback_id]
    assert mail_for(mailbox, "bounce@example.com") == []  # refused at RCPT: never taken


def test_a_later_bounce_and_the_gateway_s_reports_say_whether_the_customer_was_reached(
    system: RunningSystem,
    mailbox: MailSink,
    gateway: SmsGateway,
    bounce_pipe: BouncePipe,
    webhook_receiver: WebhookReceiver,
) -> None:
    # A CRM hears what the reports say (signed webhooks).
    endpoint = httpx.post(
        f"{system.url('notify')}/v1/admin/webhooks",
        headers=system.admin_headers,
        json={
            "url": webhook_receiver.url("/reports"),
            "events": ["follow_up.delivered", "follow_up.undelivered"],
        },
    )
    assert endpoint.status_code == 201, endpoint.text
    # By e-mail: the relay takes the mail, the recipient's server refuses it afterwards, and the
    # relay's report reaches notify through the bounce mailbox's pipe. With no phone known the
    # case's reply ends there; with one, it goes by SMS, which the gateway reports delivered.
    bounced = resolve(system, complain(system, customer(system, email=GONE, contact_consent=True)))
    steps = follow_up_steps(system, bounced, until="follow_up_not_sent")
    assert [t["kind"] for t in steps] == ["follow_up_sent", "follow_up_undelivered", "follow_up_not_sent"]
    (mail,) = mail_for(mailbox, GONE)
    assert mail.mail_from == BOUNCES and mail.message["From"] == "Frontline VoC <voc@demo.local>"
    assert steps[1]["detail"]["note"].startswith("follow-up by email not delivered: 5.1.1; smtp; 550 5.1.1")
    assert steps[1]["detail"]["recipient"] == "g***@example.com" and "gone.later" not in str(steps)
    assert "the e-mail bounced; no phone" in steps[2]["detail"]["note"]
    phone = f"010{uuid.uuid4().int % 10**8:08d}"
    moved_on = resolve(
        system, complain(system, customer(system, email=GONE_TOO, phone=phone, contact_consent=True))
    )
    steps = follow_up_steps(system, moved_on, until="follow_up_delivered")
    assert [(t["kind"], t["detail"]["channel"]) for t in steps] == [
        ("follow_up_sent", "email"),
        ("follow_up_undelivered", "email"),
        ("follow_up_sent", "sms"),
        ("follow_up_delivered", "sms"),
    ]
    assert len(mail_for(mailbox, GONE_TOO)) == 1
    (sms,) = [r for r in gateway.accepted() if r.idempotency_key == f"follow-up.{moved_on}"]
    assert LINK.search(sms.text)
    # By SMS: the gateway reports each message it took, delivered or not.
    reached, off = (f"010{uuid.uuid4().int % 10**8:08d}" for _ in range(2))
    gateway.unreachable.update({off, "+82" + off[1:]})
    delivered = resolve(system, complain(system, customer(system, phone=reached, contact_consent=True)))
    lost = resolve(system, complain(system, customer(system, phone=off, contact_consent=True)))
    assert [t["kind"] for t in follow_up_steps(system, delivered, until="follow_up_delivered")] == [
        "follow_up_sent",
        "follow_up_delivered",
    ]
    (failed,) = [
        t
        for t in follow_up_steps(system, lost, until="follow_up_undelivered")
        if t["kind"] != "follow_up_sent"
    ]
    assert failed["detail"]["note"] == (
        "follow-up by sms not delivered: E-3001 handset unreachable until the message expired"
    )
    assert all(answer.status_code == 200 for answer in bounce_pipe.answers if answer.status_code != 409)
    webhook_receiver.wait_for(5, "/reports")
    heard = {
        (b["data"]["feedback_id"], b["type"], b["data"]["channel"]): b
        for b in webhook_receiver.verified(endpoint.json()["secret"], "/reports")
    }
    assert set(heard) >= {
        (bounced, "follow_up.undelivered", "email"),
        (moved_on, "follow_up.undelivered", "email"),
        (moved_on, "follow_up.delivered", "sms"),
        (delivered, "follow_up.delivered", "sms"),
        (lost, "follow_up.undelivered", "sms"),
    }, sorted(heard)
    undelivered = heard[(bounced, "follow_up.undelivered", "email")]["data"]
    assert (
        undelivered["reason"].startswith("5.1.1; smtp; 550")
        and undelivered["recipient"] == "g***@example.com"
    )
    assert GONE not in str(heard)
    # The dashboard counts the two cases whose link never reached the customer apart (not the one
    # whose bounced e-mail went on by SMS).
    loop = httpx.get(
        f"{system.url('feedback')}/v1/analytics",
        params={"store_id": "store-gangnam"},
        headers=system.admin_headers,
    ).json()["loop"]
    assert (
        loop["follow_ups_undelivered"] >= 2
        and loop["follow_ups_messaged"] >= loop["follow_ups_undelivered"] + 1
    )


def test_smtp_down_is_retried_and_delivered_once_it_is_back(system: RunningSystem, mailbox: MailSink) -> None:
    address = f"retry.{uuid.uuid4().hex[:6]}@example.com"
    feedback_id = complain(system, customer(system, email=address, contact_consent=True))
    mailbox.stop()
    try:
        resolve(system, feedback_id)
        steps = follow_up_steps(system, feedback_id, until="follow_up_retrying")
        assert steps[0]["detail"]["note"].startswith(
            "follow-up by email not delivered yet: SMTP server unavailable"
        )
        at = datetime.fromisoformat(steps[0]["at"].replace("Z", "+00:00")).timestamp()
        assert at < steps[0]["detail"]["next_attempt_at"] <= at + 1.5  # base 0.5 s, cap 1 s
    finally:
        mailbox.start()
    (mail,) = wait_for(lambda: mail_for(mailbox, address), timeout=30)
    assert LINK.search(mail.part("plain"))
    kinds = [t["kind"] for t in follow_up_steps(system, feedback_id, until="follow_up_sent")]
    assert kinds.count("follow_up_sent") == 1 and "follow_up_failed" not in kinds
    time.sleep(1.0)
    assert len(mail_for(mailbox, address)) == 1  # nothing lost, nothing twice


def alert_detail(system: RunningSystem, headers: dict[str, str], feedback_id: str) -> dict[str, Any] | None:
    """The alert of a feedback item as staff read it; None before notify made it."""
    notify = system.url("notify")
    alerts = httpx.get(f"{notify}/v1/alerts", headers=headers, params={"limit": 200}).json()["alerts"]
    found = next((a["id"] for a in alerts if a["feedback_id"] == feedback_id), None)
    if found is None:
        return None
    detail: dict[str, Any] = httpx.get(f"{notify}/v1/alerts/{found}", headers=headers).json()
    return detail


def complain_with_contact(system: RunningSystem, text: str, address: str) -> str:
    """A complaint at Gangnam from someone who leaves only an e-mail address; its feedback id."""
    posted = post_feedback(
        system,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": text,
            "ratings": {"csat": 1},
            "customer": {"email": address},
        },
        store_id="store-gangnam",
    )
    assert posted.status_code == 202, posted.text
    feedback_id: str = posted.json()["id"]
    return feedback_id


def test_erasure_reaches_the_copies_made_while_profile_was_down(system: RunningSystem) -> None:
    """Profile stopped: notify makes the alert without the customer, and feedback's case is tied
    to them only once profile is back and reads the feedback. Erasing them then redacts that
    alert too (found by the feedback ids the erasure event names), and the case."""
    address = f"down.{uuid.uuid4().hex[:6]}@example.com"
    headers = login(system, ADMIN)
    profile = system.system.services["profile"]

    def alert() -> dict[str, Any] | None:
        return alert_detail(system, headers, feedback_id)

    profile.terminate()
    profile.wait(20)
    try:
        feedback_id = complain_with_contact(
            system, "정수민입니다. 국이 식어서 나왔어요, 010-9876-5432로 연락 주세요.", address
        )
        made = wait_for(alert, timeout=30)
        assert made["context"]["known"] is False and made["feedback"]["text"].startswith("정수민")
    finally:
        system.system.start_service("profile")
        system.system.wait_ready(names=("profile",))
    customer_id = wait_for(lambda: case(system, feedback_id)["customer_id"], timeout=30)
    erased = httpx.delete(f"{system.url('profile')}/v1/customers/{customer_id}", headers=system.admin_headers)
    assert erased.status_code == 200, erased.text

    redacted = wait_for(lambda: (a := alert()) and a["context"].get("erased") and a, timeout=30)
    assert redacted["context"] == {"known": False, "erased": True} and redacted["feedback"]["text"] == ""
    assert "정수민" not in redacted["body"]
    assert "9876-5432" not in str(redacted) and "010-9876" not in str(redacted)
    assert wait_for(lambda: case(system, feedback_id)["text"] is None, timeout=30)


def test_an_erasure_read_before_the_item_s_own_event_leaves_no_copy(system: RunningSystem) -> None:
    """notify stopped while a customer complains and is erased: once it is back it reads both,
    in whatever order its consumers take them. The alert ends as the erasure leaves one (made
    so at once when the erasure came first: notify remembers the items it named)."""
    address = f"lagged.{uuid.uuid4().hex[:6]}@example.com"
    notify_process = system.system.services["notify"]
    notify_process.terminate()
    notify_process.wait(20)
    try:
        feedback_id = complain_with_contact(
            system, "한지우입니다. 테이블이 끈적거려요, 010-2468-1357로 연락 주세요.", address
        )
        customer_id = wait_for(lambda: case(system, feedback_id)["customer_id"], timeout=30)
        erased = httpx.delete(
            f"{system.url('profile')}/v1/customers/{customer_id}", headers=system.admin_headers
        )
        assert erased.status_code == 200, erased.text
    finally:
        system.system.start_service("notify")
        system.system.wait_ready(names=("notify",))
    headers = login(system, ADMIN)

    def redacted() -> dict[str, Any] | None:
        detail = alert_detail(system, headers, feedback_id)
        return detail if detail is not None and detail["context"].get("erased") else None

    alert = wait_for(redacted, timeout=45)
    assert alert["context"] == {"known": False, "erased": True} and alert["feedback"]["text"] == ""
    assert "한지우" not in str(alert) and "2468" not in str(alert)
