"""Delivery reports of follow-up messages (#19), through notify's REST route on the real notify
database: a bounce (the DSN mail a relay wrote, as the sink writes it like Postfix) and an SMS
gateway's JSON report move a sent message to `delivered` or `undelivered` once, each with its
event for the case timeline; what is not ours, not sent or still being recorded is said so."""

from __future__ import annotations

import base64
import time
import uuid
from email.message import EmailMessage

import pytest
from sqlalchemy import update

from tests.conftest import DatabaseFactory
from tests.notify.conftest import Notify, events, make_notify
from voc.events.v1 import events_pb2
from voc_cli.mail_sink import ReceivedMail, delivery_status_notification
from voc_notify import auth, delivery_reports, follow_ups, tombstones
from voc_notify.channels import DeliveryReport, server_said
from voc_notify.channels.bounces import read_dsn
from voc_notify.channels.mail import UNCONFIRMED
from voc_notify.follow_ups import feedback_id_of
from voc_notify.models import FollowUpMessage
from voc_notify.settings import Settings

TOKEN = "delivery-report-token-for-tests-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ROUTE = "/v1/follow-ups/delivery-reports"
MAIL_FROM = "Frontline VoC <voc@demo.local>"  # our Message-IDs are <follow-up.<id>@demo.local>


def mailed(
    feedback_id: str, *, to: str = "gone@example.com", subject: str = "=?utf-8?b?7ZuE7IaN?="
) -> ReceivedMail:
    """The follow-up mail as the relay took it (the headers notify's MailSender writes)."""
    message = EmailMessage()
    message["From"] = "Frontline VoC <voc@demo.local>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<follow-up.{feedback_id}@demo.local>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("말씀해 주신 문제는 잘 해결되었나요?")
    return ReceivedMail("bounces@demo.local", (to,), message, tls=False)


def bounce(feedback_id: str, **kwargs: str) -> bytes:
    return delivery_status_notification(
        mailed(feedback_id), "gone@example.com", reporting_mta="relay.demo", **kwargs
    )


@pytest.fixture
async def notify(databases: DatabaseFactory) -> Notify:
    return await make_notify(
        databases, auth.hash_password("unused-password-1"), delivery_report_token=TOKEN, mail_from=MAIL_FROM
    )


@pytest.fixture
async def notify_with_sms(databases: DatabaseFactory) -> Notify:
    """notify with an SMS gateway configured: a bounced mail may go on by SMS."""
    return await make_notify(
        databases,
        auth.hash_password("unused-password-1"),
        delivery_report_token=TOKEN,
        mail_from=MAIL_FROM,
        sms_gateway_url="https://sms.example.com/v1/messages",
        sms_sender="0215880000",
    )


async def sent_message(notify: Notify, *, channel: str = "email", status: str = "sent") -> str:
    feedback_id = str(uuid.uuid4())
    now = time.time()
    async with notify.database.transaction() as session:
        session.add(
            FollowUpMessage(
                feedback_id=feedback_id,
                store_id="s1",
                customer_id="c-1",
                url="http://feedback.test/f/x",
                language="ko",
                channel=channel,
                recipient="g***@example.com" if channel == "email" else "***5678",
                status=status,
                attempts=1,
                next_attempt_at=now,
                expires_at=now + 86400,
                created_at=now,
                sent_at=now if status == "sent" else None,
            )
        )
    return feedback_id


async def reported(notify: Notify, feedback_id: str) -> list[events_pb2.FollowUpSent]:
    found = [
        events_pb2.FollowUpSent.FromString(e["payload"])
        for e in await events(notify.database, follow_ups.SUBJECT_SENT)
    ]
    return [m for m in found if m.feedback_id == feedback_id]


async def status_of(notify: Notify, feedback_id: str) -> str:
    async with notify.database.session() as session:
        row = await session.get(FollowUpMessage, feedback_id)
    assert row is not None
    return row.status


def test_a_postfix_bounce_names_its_message_and_why() -> None:
    feedback_id = str(uuid.uuid4())
    read = read_dsn(bounce(feedback_id))
    assert read is not None
    assert feedback_id_of(read.message_id, mail_domain="demo.local") == feedback_id
    assert (read.outcome, read.channel) == ("undelivered", "email")
    assert read.reason.startswith("5.1.1; smtp; 550 5.1.1") and "User unknown" in read.reason
    assert "gone@" not in read.reason  # the address is masked
    # The codes as written (masking would read "550 5.1.10" as a phone number), the rest masked.
    exchange = read_dsn(
        bounce(
            feedback_id,
            status="5.1.10",
            diagnostic="550 5.1.10 RESOLVER.ADR.RecipientNotFound; {rcpt} not found",
        )
    )
    assert exchange is not None
    assert exchange.reason == "5.1.10; smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound; ***@*** not found"


def test_bounces_as_other_servers_write_them() -> None:
    """RFC 6533's global forms (internationalised mail), one block for the whole status, an Action
    with a comment, a base64 status part, a relay that replaced our Message-ID and kept it as
    X-Original-Message-ID, bare LF line ends: all read alike."""
    feedback_id = str(uuid.uuid4())
    raw = bounce(feedback_id)
    status_at = raw.index(b"Content-Type: message/delivery-status\r\n\r\n")
    status_end = raw.index(b"\r\n--", status_at)
    status_body = raw[status_at + len(b"Content-Type: message/delivery-status\r\n\r\n") : status_end]
    encoded = base64.encodebytes(status_body).replace(b"\n", b"\r\n")
    variants = {
        "global": raw.replace(b"message/delivery-status", b"message/global-delivery-status").replace(
            b"text/rfc822-headers", b"message/global-headers"
        ),
        "one block": raw.replace(b"\r\n\r\nFinal-Recipient", b"\r\nFinal-Recipient"),
        "comment": raw.replace(b"Action: failed", b"Action: failed (bad destination mailbox address)"),
        "base64": raw[:status_at]
        + b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + raw[status_end:],
        "replaced id": raw.replace(
            f"Message-ID: <follow-up.{feedback_id}@demo.local>".encode(),
            b"Message-ID: <0100018c@email.amazonses.com>\r\n"
            + f"X-Original-Message-ID: <follow-up.{feedback_id}@demo.local>".encode(),
        ),
        "LF": raw.replace(b"\r\n", b"\n"),
    }
    for name, variant in variants.items():
        read = read_dsn(variant)
        assert read is not None, name
        assert feedback_id_of(read.message_id, mail_domain="demo.local") == feedback_id, name
        assert read.outcome == "undelivered" and read.reason.startswith("5.1.1; smtp; 550"), name


def test_only_a_final_word_on_delivery_counts() -> None:
    feedback_id = str(uuid.uuid4())
    delayed = bounce(feedback_id).replace(b"Action: failed", b"Action: delayed")
    assert read_dsn(delayed) is None  # "still trying": no final word
    vacation = b"From: kim@example.com\r\nSubject: Out of office\r\n\r\nBack on Monday.\r\n"
    assert read_dsn(vacation) is None
    assert read_dsn(b"") is None
    # A DSN quoting the whole message (message/rfc822), as Exim and Exchange do.
    whole = bounce(feedback_id).replace(b"text/rfc822-headers", b"message/rfc822")
    read = read_dsn(whole)
    assert read is not None and feedback_id_of(read.message_id, mail_domain="demo.local") == feedback_id


def test_message_ids_of_ours_and_of_others() -> None:
    ours = "demo.local"
    assert feedback_id_of("follow-up.abc", mail_domain=ours) == "abc"
    assert feedback_id_of("<follow-up.abc@demo.local>", mail_domain=ours) == "abc"
    assert feedback_id_of("<follow-up.abc@Demo.Local>", mail_domain=ours) == "abc"
    # Anyone can mail the bounce address: a Message-ID of another domain is not one of ours.
    assert feedback_id_of("<follow-up.abc@attacker.example>", mail_domain=ours) is None
    assert feedback_id_of("<20261208.1234@mail.example.com>", mail_domain=ours) is None
    assert feedback_id_of("follow-up.", mail_domain=ours) is None
    assert feedback_id_of("follow-up." + "x" * 37, mail_domain=ours) is None


async def test_a_bounce_mail_makes_a_sent_message_undelivered_once(notify: Notify) -> None:
    feedback_id = await sent_message(notify)
    headers = {**BEARER, "Content-Type": "message/rfc822"}
    async with notify.client() as client:
        first = await client.post(ROUTE, content=bounce(feedback_id), headers=headers)
        again = await client.post(ROUTE, content=bounce(feedback_id), headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1, "duplicates": 0, "unknown": 0, "not_sent": 0, "ignored": 0}
    assert again.json()["duplicates"] == 1 and again.json()["recorded"] == 0
    assert await status_of(notify, feedback_id) == "undelivered"
    (event,) = await reported(notify, feedback_id)
    assert (event.outcome, event.channel, event.recipient) == ("undelivered", "email", "g***@example.com")
    assert event.reason.startswith("5.1.1; smtp; 550") and "gone@" not in event.reason


async def test_a_gateway_reports_delivered_then_a_later_failure_still_counts(notify: Notify) -> None:
    delivered, failed = await sent_message(notify, channel="sms"), await sent_message(notify, channel="sms")
    async with notify.client() as client:
        batch = await client.post(
            ROUTE,
            headers=BEARER,
            json=[
                {"message_id": f"follow-up.{delivered}", "status": "delivered", "provider_ref": "r-1"},
                {
                    "message_id": f"follow-up.{failed}",
                    "status": "failed",
                    "error": "E-3001 handset off 010-1234-5678",
                },
                {"message_id": "follow-up.not-one-of-ours", "status": "delivered"},
                {"message_id": "their-own-id-42", "status": "delivered"},
            ],
        )
        # Reports come at least once and in any order: delivered twice, then a late failure.
        late = await client.post(
            ROUTE, headers=BEARER, json={"message_id": f"follow-up.{delivered}", "status": "failed"}
        )
        early = await client.post(
            ROUTE, headers=BEARER, json={"message_id": f"follow-up.{failed}", "status": "delivered"}
        )
    assert batch.status_code == 200, batch.text
    assert batch.json() == {"recorded": 2, "duplicates": 0, "unknown": 2, "not_sent": 0, "ignored": 0}
    assert late.json()["recorded"] == 1 and early.json()["duplicates"] == 1
    assert (
        await status_of(notify, delivered) == "undelivered"
        and await status_of(notify, failed) == "undelivered"
    )
    assert [e.outcome for e in await reported(notify, delivered)] == ["delivered", "undelivered"]
    (event,) = await reported(notify, failed)
    assert event.reason == "E-3001 handset off ***5678"  # the number masked


async def test_a_message_never_sent_or_still_being_recorded(notify: Notify) -> None:
    not_sent = await sent_message(notify, status="not_sent")
    sending = await sent_message(notify, channel="sms", status="sending")
    sent = await sent_message(notify, channel="sms")
    async with notify.client() as client:
        answer = await client.post(
            ROUTE,
            headers=BEARER,
            json=[
                {"message_id": f"follow-up.{not_sent}", "status": "delivered"},
                {"message_id": f"follow-up.{sending}", "status": "delivered"},
                {"message_id": f"follow-up.{sent}", "status": "delivered"},
            ],
        )
        assert answer.status_code == 409, answer.text
        assert answer.headers["retry-after"] == "5" and "1 of 3" in answer.json()["detail"]
        assert await status_of(notify, sent) == "delivered"  # the others are recorded
        async with notify.database.transaction() as session:
            await session.execute(
                update(FollowUpMessage).where(FollowUpMessage.feedback_id == sending).values(status="sent")
            )
        retried = await client.post(
            ROUTE, headers=BEARER, json={"message_id": f"follow-up.{sending}", "status": "delivered"}
        )
    assert retried.json()["recorded"] == 1
    assert await status_of(notify, not_sent) == "not_sent" and await reported(notify, not_sent) == []


async def test_only_the_delivery_report_token_opens_the_route(databases: DatabaseFactory) -> None:
    unset = await make_notify(databases, auth.hash_password("unused-password-1"))
    body = {"message_id": "follow-up.x", "status": "delivered"}
    async with unset.client() as client:
        assert (await client.post(ROUTE, json=body)).status_code == 401
        assert (await client.post(ROUTE, json=body, headers=BEARER)).status_code == 401  # unset: none taken
        admin = await client.post(
            ROUTE, json=body, headers={"Authorization": f"Bearer {unset.app.state.settings.admin_token}"}
        )
        assert admin.status_code == 401


async def test_bad_reports_are_refused_with_their_field(notify: Notify) -> None:
    async with notify.client() as client:
        wrong_status = await client.post(
            ROUTE, headers=BEARER, json={"message_id": "follow-up.x", "status": "read"}
        )
        too_many = await client.post(
            ROUTE, headers=BEARER, json=[{"message_id": "follow-up.x", "status": "delivered"}] * 101
        )
        not_json = await client.post(
            ROUTE, headers={**BEARER, "Content-Type": "application/json"}, content=b"{"
        )
        deep = await client.post(
            ROUTE, headers={**BEARER, "Content-Type": "application/json"}, content=b"[" * 50_000
        )
        wrong_in_batch = await client.post(
            ROUTE,
            headers=BEARER,
            json=[
                {"message_id": "follow-up.x", "status": "delivered"},
                {"message_id": "follow-up.y", "status": "?"},
            ],
        )
        form = await client.post(
            ROUTE, headers={**BEARER, "Content-Type": "text/plain"}, content=b"delivered"
        )
        empty_mail = await client.post(
            ROUTE, headers={**BEARER, "Content-Type": "message/rfc822"}, content=b" "
        )
        vacation = await client.post(
            ROUTE,
            headers={**BEARER, "Content-Type": "message/rfc822"},
            content=b"From: kim@example.com\r\nSubject: Out of office\r\n\r\nBack on Monday.\r\n",
        )
    assert wrong_status.status_code == 422
    assert wrong_status.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in wrong_status.json()["errors"]] == ["body.status"]
    assert too_many.status_code == 422 and [e["field"] for e in too_many.json()["errors"]] == ["body"]
    assert [e["field"] for e in wrong_in_batch.json()["errors"]] == ["body.1.status"]
    assert not_json.status_code == 400 and deep.status_code == 400
    assert form.status_code == 415
    assert empty_mail.status_code == 422 and empty_mail.json()["errors"][0]["field"] == "body"
    assert vacation.status_code == 200 and vacation.json()["ignored"] == 1


@pytest.mark.parametrize(
    "level",
    [b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", b"Content-Type: message/rfc822\r\n\r\n"],
)
async def test_a_mail_nested_past_reading_is_refused_not_a_server_error(notify: Notify, level: bytes) -> None:
    """The parser recurses once per level of parts: thousands of them (within the 64 KB body) are
    refused by count or by depth, 422 naming the body."""
    deep = level * (60_000 // len(level))
    async with notify.client() as client:
        answer = await client.post(ROUTE, headers={**BEARER, "Content-Type": "message/rfc822"}, content=deep)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "body", answer.text


def test_production_refuses_a_weak_or_shared_delivery_report_token() -> None:
    secrets = {
        "admin_token": "a" * 10 + "Zq8xK2mP9vR4tW7yB3nF6hJ",
        "internal_token": "b" * 10 + "Zq8xK2mP9vR4tW7yB3nF6hJ",
        "jwt_secret": "c" * 10 + "Zq8xK2mP9vR4tW7yB3nF6hJ",
    }
    with pytest.raises(ValueError, match="VOC_DELIVERY_REPORT_TOKEN"):
        Settings(VOC_ENV="production", **secrets, VOC_DELIVERY_REPORT_TOKEN="change-me")
    with pytest.raises(ValueError, match="VOC_DELIVERY_REPORT_TOKEN is the same value as VOC_ADMIN_TOKEN"):
        Settings(VOC_ENV="production", **secrets, VOC_DELIVERY_REPORT_TOKEN=secrets["admin_token"])
    assert Settings(VOC_ENV="production", **secrets).delivery_report_token == ""  # unset: the route is shut
    with pytest.raises(ValueError, match="an e-mail address alone"):
        Settings(VOC_ENV="test", VOC_MAIL_BOUNCE_ADDRESS="Bounces <bounces@example.com>")


async def test_with_sms_configured_a_bounced_mail_is_due_again_off_e_mail(notify_with_sms: Notify) -> None:
    """The case's reply still goes: due at once for the worker, which now passes over e-mail (the
    SMS itself, with profile's phone and the gateway, is end to end in tests/e2e/test_follow_up.py).
    A retry of the same bounce by the pipe is a duplicate, not news of the SMS."""
    notify = notify_with_sms
    feedback_id = await sent_message(notify)
    headers = {**BEARER, "Content-Type": "message/rfc822"}
    before = time.time()
    async with notify.client() as client:
        first = await client.post(ROUTE, content=bounce(feedback_id), headers=headers)
        again = await client.post(ROUTE, content=bounce(feedback_id), headers=headers)
        unsaid = await client.post(
            ROUTE, headers=BEARER, json={"message_id": f"follow-up.{feedback_id}", "status": "failed"}
        )
    assert (
        first.json()["recorded"] == 1 and again.json()["duplicates"] == 1 and unsaid.json()["duplicates"] == 1
    )
    async with notify.database.session() as session:
        row = await session.get(FollowUpMessage, feedback_id)
    assert row is not None
    assert (row.status, row.undelivered_channel, row.channel) == ("pending", "email", "email")
    assert before <= row.next_attempt_at <= time.time()
    assert [e.outcome for e in await reported(notify, feedback_id)] == ["undelivered"]
    # Once it went by SMS, a report without a channel is of the SMS; one of e-mail is the old one.
    async with notify.database.transaction() as session:
        await session.execute(
            update(FollowUpMessage)
            .where(FollowUpMessage.feedback_id == feedback_id)
            .values(status="sent", channel="sms")
        )
    async with notify.client() as client:
        old = await client.post(
            ROUTE,
            headers=BEARER,
            json={"message_id": f"follow-up.{feedback_id}", "status": "failed", "channel": "email"},
        )
        sms = await client.post(
            ROUTE, headers=BEARER, json={"message_id": f"follow-up.{feedback_id}", "status": "delivered"}
        )
    assert old.json()["duplicates"] == 1 and sms.json()["recorded"] == 1
    assert await status_of(notify, feedback_id) == "delivered"


async def test_without_sms_or_once_the_link_expired_a_bounce_is_the_last_word(notify: Notify) -> None:
    feedback_id = await sent_message(notify)
    async with notify.client() as client:
        answer = await client.post(
            ROUTE, content=bounce(feedback_id), headers={**BEARER, "Content-Type": "message/rfc822"}
        )
        other = await client.post(
            ROUTE,
            headers=BEARER,
            json={"message_id": f"follow-up.{feedback_id}", "status": "failed", "channel": "sms"},
        )
    assert answer.json()["recorded"] == 1 and other.json()["unknown"] == 1  # never went by SMS
    assert await status_of(notify, feedback_id) == "undelivered"


async def test_a_report_settles_a_send_whose_outcome_was_not_known(notify: Notify) -> None:
    """An SMS request that timed out is waiting to be tried again, but the gateway took it: its
    report stops the retry and the case hears it was sent, then delivered. An e-mail failed as
    unconfirmed (the connection dropped after its body went) that bounces: sent, then not
    delivered. Before, both reports were answered `not_sent` and never came again."""
    sms = await sent_message(notify, channel="sms", status="pending")
    mail = await sent_message(notify, status="failed")
    async with notify.database.transaction() as session:
        await session.execute(
            update(FollowUpMessage)
            .where(FollowUpMessage.feedback_id == mail)
            .values(last_error=f"{UNCONFIRMED} (TimeoutError)")
        )
    async with notify.client() as client:
        took = await client.post(
            ROUTE, headers=BEARER, json={"message_id": f"follow-up.{sms}", "status": "delivered"}
        )
        bounced = await client.post(
            ROUTE, content=bounce(mail), headers={**BEARER, "Content-Type": "message/rfc822"}
        )
    assert took.json()["recorded"] == 1 and bounced.json()["recorded"] == 1
    assert await status_of(notify, sms) == "delivered" and await status_of(notify, mail) == "undelivered"
    assert [(e.outcome, e.channel) for e in await reported(notify, sms)] == [
        ("sent", "sms"),
        ("delivered", "sms"),
    ]
    sent, undelivered = await reported(notify, mail)
    assert (sent.outcome, sent.reason) == ("sent", "the mail server reported on it, so it took it")
    assert undelivered.outcome == "undelivered"


async def test_a_forged_bounce_for_another_domain_changes_nothing(notify: Notify) -> None:
    feedback_id = await sent_message(notify)
    forged = bounce(feedback_id).replace(b"@demo.local>", b"@attacker.example>")
    async with notify.client() as client:
        answer = await client.post(
            ROUTE, content=forged, headers={**BEARER, "Content-Type": "message/rfc822"}
        )
    assert answer.json()["unknown"] == 1 and await status_of(notify, feedback_id) == "sent"


async def test_two_reports_of_one_message_in_one_millisecond(notify: Notify) -> None:
    """Each report's event has an id of its own (its outcome in it): a delivered and a later
    bounce recorded at the same instant both reach the case (the same id made the second fail)."""
    feedback_id = await sent_message(notify, channel="sms")
    reports = [
        DeliveryReport(f"follow-up.{feedback_id}", "delivered"),
        DeliveryReport(f"follow-up.{feedback_id}", "undelivered", "E-1"),
    ]
    tally = await delivery_reports.record(
        notify.database, reports, mail_domain="demo.local", sms_fallback=False, now=1_800_000_000.0
    )
    assert tally.recorded == 2
    assert [e.outcome for e in await reported(notify, feedback_id)] == ["delivered", "undelivered"]


async def test_a_bounce_quoting_a_large_message_is_taken(notify: Notify) -> None:
    """A bounce may quote the whole message, HTML and all (Microsoft 365's): past the 64 KB every
    other body is held to, up to the bulk limit for a caller that sends credentials."""
    feedback_id = await sent_message(notify)
    raw = bounce(feedback_id)
    large = raw.replace(b"Auto-Submitted: auto-generated", b"X-Padding: " + b"x" * 200_000, 1)
    assert len(large) > 200_000
    async with notify.client() as client:
        answer = await client.post(ROUTE, content=large, headers={**BEARER, "Content-Type": "message/rfc822"})
    assert answer.status_code == 200 and answer.json()["recorded"] == 1, answer.text


async def test_erasure_drops_what_a_mail_server_said_of_the_customer_s_mailbox(notify: Notify) -> None:
    feedback_id = await sent_message(notify)
    async with notify.client() as client:
        await client.post(
            ROUTE,
            content=bounce(feedback_id, diagnostic="552 5.2.2 kim.minsu mailbox full"),
            headers={**BEARER, "Content-Type": "message/rfc822"},
        )
    async with notify.database.session() as session:
        row = await session.get(FollowUpMessage, feedback_id)
        assert row is not None and "kim.minsu" in (row.last_error or "")
    async with notify.database.transaction() as session:
        await follow_ups.forget_customer(session, customer_id="c-1", now=time.time())
    async with notify.database.session() as session:
        row = await session.get(FollowUpMessage, feedback_id)
        assert row is not None and (row.status, row.last_error) == ("undelivered", None)


def test_only_codes_stand_unmasked_in_front_of_a_server_s_words() -> None:
    assert server_said("tel-010-1234-5678; unreachable") == "tel-***5678; unreachable"
    assert server_said("X홍길동01012345678; not delivered") == "X홍길동***5678; not delivered"
    assert server_said("X-Postfix; host said 550 5.1.1 <kim@example.com>") == (
        "X-Postfix; host said 550 5.1.1 <***@***>"
    )
    assert server_said("smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound") == (
        "smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound"
    )


async def test_no_sms_after_a_delivered_mail_or_an_erasure(notify_with_sms: Notify) -> None:
    """A mail reported delivered that bounces further on (a forwarding chain) may have been read:
    it does not go on by SMS. Nor does one whose customer was erased, and the report of it keeps
    no words of the server."""
    notify = notify_with_sms
    forwarded, erased = await sent_message(notify), await sent_message(notify)
    async with notify.database.transaction() as session:
        await tombstones.remember(session, customer_id="", feedback_ids=[erased], now=time.time())
    mail = {**BEARER, "Content-Type": "message/rfc822"}
    async with notify.client() as client:
        await client.post(
            ROUTE, headers=BEARER, json={"message_id": f"follow-up.{forwarded}", "status": "delivered"}
        )
        await client.post(ROUTE, content=bounce(forwarded), headers=mail)
        await client.post(
            ROUTE, content=bounce(erased, diagnostic="552 5.2.2 kim.minsu mailbox full"), headers=mail
        )
    assert (
        await status_of(notify, forwarded) == "undelivered"
        and await status_of(notify, erased) == "undelivered"
    )
    (event,) = await reported(notify, erased)
    assert event.outcome == "undelivered" and event.reason == ""
