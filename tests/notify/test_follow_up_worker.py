"""Scheduling and deciding follow-up messages in-process, with the real notify database: the
delay and the store's quiet hours move the send, one message per case, and the decisions taken
before any channel is used (no channel configured, the link expired, profile unreachable) are
recorded with their reason and published for the case timeline. Sending through real SMTP and
the gateway, with profile's consent and erasure, is end to end in tests/e2e/test_follow_up.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.notify.conftest import SEOUL, events, seoul
from tests.profile.conftest import INTERNAL_TOKEN as PROFILE_TOKEN
from tests.profile.conftest import Grpc
from tests.support.sms_gateway import SmsGateway
from voc.events.v1 import events_pb2
from voc_cli.mail_sink import MailSink
from voc_cli.supervisor import free_port
from voc_notify import follow_ups
from voc_notify.channels.mail import MailSender, parse_smtp_url
from voc_notify.channels.sms import HttpGateway
from voc_notify.clients import Upstreams
from voc_notify.follow_ups import FollowUpWorker
from voc_notify.models import FollowUpMessage, Store
from voc_notify.settings import Settings
from voc_notify.webpush.endpoints import PushAllowlist
from voc_platform.db import Database


def request(
    feedback_id: str, *, send_after: float = 0.0, expires_in: float = 3600.0, language: str = "ko"
) -> events_pb2.FollowUpRequested:
    return events_pb2.FollowUpRequested(
        feedback_id=feedback_id,
        store_id="s1",
        customer_id="c-1",
        url=f"http://feedback.test/f/{feedback_id}.sig",
        language=language,
        expires_at_ms=int((time.time() + expires_in) * 1000),
        send_after_ms=int(send_after * 1000),
        email="minsu.kim@example.com",
    )


def gateway_client(gateway: SmsGateway) -> HttpGateway:
    """notify's generic gateway adapter, pointed at the emulator (its token and sender)."""
    return HttpGateway(
        gateway.url, token="t", sender="0215880000", allowlist=PushAllowlist([f"127.0.0.1:{gateway.port}"])
    )


async def schedule(
    db: Database, message: events_pb2.FollowUpRequested, *, now: float
) -> FollowUpMessage | None:
    async with db.transaction() as session:
        return await follow_ups.schedule(session, request=message, now=now)


async def row(db: Database, feedback_id: str) -> FollowUpMessage:
    async with db.session() as session:
        found = await session.scalar(
            select(FollowUpMessage).where(FollowUpMessage.feedback_id == feedback_id)
        )
    assert found is not None
    return found


async def published(db: Database, feedback_id: str) -> list[events_pb2.FollowUpSent]:
    sent = []
    for event in await events(db, follow_ups.SUBJECT_SENT):
        message = events_pb2.FollowUpSent.FromString(event["payload"])
        if message.feedback_id == feedback_id:
            sent.append(message)
    return sent


@pytest.fixture
async def quiet_store(notify_db: Database) -> AsyncIterator[Database]:
    async with notify_db.transaction() as session:
        store = await session.get(Store, "s1")
        assert store is not None
        store.quiet_start, store.quiet_end = "22:00", "08:00"
    yield notify_db


async def test_quiet_hours_move_the_send_to_their_end_and_the_case_hears_of_it(quiet_store: Database) -> None:
    night = seoul(2026, 12, 5, 23, 30)
    created = await schedule(quiet_store, request("f-night"), now=night)
    assert created is not None
    stored = await row(quiet_store, "f-night")
    morning = seoul(2026, 12, 6, 8, 0)
    assert stored.next_attempt_at == stored.held_until == morning and stored.status == "pending"
    (held,) = await published(quiet_store, "f-night")
    assert (held.outcome, held.reason, held.next_attempt_at_ms) == (
        "held",
        "store quiet hours",
        morning * 1000,
    )
    # At most one message per case: a second request (a redelivery, a second resolution) changes nothing.
    assert await schedule(quiet_store, request("f-night"), now=night + 60) is None
    assert (await row(quiet_store, "f-night")).next_attempt_at == morning
    # The delay ending inside quiet hours moves it too; ending outside, it is kept as asked.
    evening = seoul(2026, 12, 5, 20, 0)
    await schedule(quiet_store, request("f-delayed", send_after=evening + 7200), now=evening)
    assert (await row(quiet_store, "f-delayed")).next_attempt_at == morning
    await schedule(
        quiet_store, request("f-afternoon", send_after=seoul(2026, 12, 5, 16, 0)), now=evening - 6 * 3600
    )
    afternoon = await row(quiet_store, "f-afternoon")
    assert afternoon.next_attempt_at == seoul(2026, 12, 5, 16, 0) and afternoon.held_until is None
    assert await published(quiet_store, "f-afternoon") == []
    assert SEOUL.key == "Asia/Seoul"


async def test_quiet_hours_set_after_scheduling_hold_the_send_when_it_is_due(notify_db: Database) -> None:
    """Quiet hours are checked again right before sending: a manager who sets them during
    the delay (or a pass that runs late into them) holds the message until they end, without
    counting an attempt and without asking profile or a channel."""
    settings = Settings(profile_grpc_target=f"127.0.0.1:{free_port()}", grpc_timeout_seconds=0.5)
    mail = MailSender(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"), mail_from="voc@demo.local")
    worker = FollowUpWorker(notify_db, settings, contacts=Upstreams(settings), mail=mail, sms=None)
    now = time.time()
    await schedule(notify_db, request("f-late-quiet"), now=now)
    local = datetime.fromtimestamp(now, SEOUL)
    async with notify_db.transaction() as session:
        store = await session.get(Store, "s1")
        assert store is not None
        store.quiet_start = (local - timedelta(hours=1)).strftime("%H:%M")
        store.quiet_end = (local + timedelta(hours=2)).strftime("%H:%M")
    assert await worker.process_due() == 1
    held = await row(notify_db, "f-late-quiet")
    assert (held.status, held.attempts, held.last_error) == ("pending", 0, "store quiet hours")
    assert now + 3600 < held.next_attempt_at <= now + 2 * 3600 + 60
    (event,) = await published(notify_db, "f-late-quiet")
    assert (event.outcome, event.reason) == ("held", "store quiet hours")
    assert event.next_attempt_at_ms == int(held.next_attempt_at * 1000)
    assert await worker.process_due() == 0  # not due again before they end


async def test_no_channel_configured_is_said_once_and_nothing_is_kept(notify_db: Database) -> None:
    settings = Settings()
    worker = FollowUpWorker(notify_db, settings, contacts=Upstreams(settings), mail=None, sms=None)
    await schedule(notify_db, request("f-none"), now=time.time())
    assert await worker.process_due() == 1
    settled = await row(notify_db, "f-none")
    assert (settled.status, settled.last_error, settled.email, settled.attempts) == (
        "not_sent",
        "no channel configured",
        None,
        0,
    )
    (event,) = await published(notify_db, "f-none")
    assert (event.outcome, event.reason, event.channel) == ("not_sent", "no channel configured", "none")
    assert await worker.process_due() == 0  # settled: never again
    # Event ids fit the consumers' processed-events key (64 characters).
    assert all(len(e["event_id"]) <= 64 for e in await events(notify_db, follow_ups.SUBJECT_SENT))


async def test_a_case_in_no_language_of_ours_is_asked_in_the_store_s(notify_db: Database) -> None:
    """A rating without words has no language ("" from feedback): the store's, in the text and
    in the link, so the survey page speaks it too."""
    unknown = request("f-rating-only")
    unknown.language = ""
    await schedule(notify_db, unknown, now=time.time())
    scheduled = await row(notify_db, "f-rating-only")
    assert (scheduled.language, scheduled.url) == ("en", "http://feedback.test/f/f-rating-only.sig?lang=en")
    async with notify_db.transaction() as session:
        store = await session.get(Store, "s1")
        assert store is not None
        store.language = "ko"
    korean = request("f-rating-only-ko")
    korean.language, korean.url = "", "http://feedback.test/f/x.sig?src=mail"
    await schedule(notify_db, korean, now=time.time())
    scheduled = await row(notify_db, "f-rating-only-ko")
    assert (scheduled.language, scheduled.url) == ("ko", "http://feedback.test/f/x.sig?src=mail&lang=ko")
    # A case in a language of ours keeps it, whatever the store speaks.
    await schedule(notify_db, request("f-english", language="en"), now=time.time())
    assert (await row(notify_db, "f-english")).language == "en"


async def test_without_a_customer_the_contact_given_is_checked_with_profile(
    notify_db: Database, rpc: Grpc, mail_server: MailSink
) -> None:
    """A feedback item whose profile link came after its case was resolved is asked for with no
    customer: the real profile service is asked who is on file with the contact given, and an
    opt-out there holds; a contact nobody owns gets its message."""
    upsert = await rpc.profile.client.post(
        "/v1/customers",
        headers=rpc.profile.admin,
        json={"customers": [{"loyalty_id": "L-LATE", "email": "late@example.com", "contact_consent": False}]},
    )
    assert upsert.status_code == 200, upsert.text
    settings = Settings(profile_grpc_target=rpc.target, internal_token=PROFILE_TOKEN)
    upstreams = Upstreams(settings)
    mail = MailSender(parse_smtp_url(mail_server.url), mail_from="voc@demo.local")
    worker = FollowUpWorker(notify_db, settings, contacts=upstreams, mail=mail, sms=None)
    try:
        for feedback_id, address in (
            ("f-late-opted-out", "Late@Example.com"),
            ("f-late-new", "new@example.com"),
        ):
            late = request(feedback_id)
            late.customer_id, late.email = "", address
            await schedule(notify_db, late, now=time.time())
        assert await worker.process_due() == 2
        declined = await row(notify_db, "f-late-opted-out")
        assert (declined.status, declined.last_error, declined.email) == (
            "not_sent",
            follow_ups.OPTED_OUT,
            None,
        )
        assert (await row(notify_db, "f-late-new")).status == "sent"
        assert [m.rcpt_tos for m in mail_server.wait(1)] == [("new@example.com",)]
    finally:
        await upstreams.close()


async def test_a_store_missing_from_the_directory_is_not_named_by_its_id(
    notify_db: Database, rpc: Grpc, mail_server: MailSink
) -> None:
    """Feedback can name a store notify's directory does not list: the customer's mail then
    names no store rather than "[s-unlisted]"."""
    settings = Settings(profile_grpc_target=rpc.target, internal_token=PROFILE_TOKEN)
    upstreams = Upstreams(settings)
    mail = MailSender(parse_smtp_url(mail_server.url), mail_from="voc@demo.local")
    worker = FollowUpWorker(notify_db, settings, contacts=upstreams, mail=mail, sms=None)
    try:
        unlisted = request("f-unlisted")
        unlisted.store_id, unlisted.customer_id, unlisted.email = "s-unlisted", "", "walk-in@example.com"
        await schedule(notify_db, unlisted, now=time.time())
        assert await worker.process_due() == 1
        (received,) = mail_server.wait(1)
    finally:
        await upstreams.close()
    assert received.subject == "방문해 주셔서 감사합니다. 문제는 잘 해결되었나요?"
    body = received.part("plain")
    assert body.startswith("방문해 주셔서 감사합니다.") and "http://feedback.test/f/f-unlisted.sig" in body
    assert "s-unlisted" not in body + received.part("html")


async def test_an_alimtalk_for_a_store_missing_from_the_directory_still_fills_its_template(
    notify_db: Database, rpc: Grpc
) -> None:
    """An approved template's `#{store}` cannot be left empty (the gateway, as a provider does,
    refuses a message missing a variable): a store the directory does not list reads "매장"."""
    message = request("f-unlisted-sms")
    message.store_id, message.customer_id, message.email, message.phone = "s-unlisted", "", "", "01012345678"
    await schedule(notify_db, message, now=time.time())
    settings = Settings(profile_grpc_target=rpc.target, internal_token=PROFILE_TOKEN)
    upstreams = Upstreams(settings)
    with SmsGateway(token="t", sender="0215880000", template_id="") as gateway:
        sms = gateway_client(gateway)
        worker = FollowUpWorker(notify_db, settings, contacts=upstreams, mail=None, sms=sms)
        try:
            assert await worker.process_due() == 1
        finally:
            await sms.aclose()
            await upstreams.close()
        (accepted,) = gateway.accepted()
    assert accepted.body["variables"]["store"] == "매장" and gateway.refused == []
    assert not accepted.text.startswith("[") and "s-unlisted" not in accepted.text
    assert (await row(notify_db, "f-unlisted-sms")).status == "sent"


async def test_profile_unreachable_is_retried_with_back_off_and_an_expired_link_is_not_sent(
    notify_db: Database,
) -> None:
    """Consent and erasure are asked of profile right before sending: without an answer
    nothing is sent, the attempt is retried later; a link that expired is not sent at all."""
    settings = Settings(
        profile_grpc_target=f"127.0.0.1:{free_port()}",
        grpc_timeout_seconds=0.5,
        follow_up_retry_base_seconds=20,
        follow_up_retry_cap_seconds=40,
    )
    upstreams = Upstreams(settings)
    mail = MailSender(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"), mail_from="voc@demo.local")
    worker = FollowUpWorker(notify_db, settings, contacts=upstreams, mail=mail, sms=None)
    try:
        now = time.time()
        await schedule(notify_db, request("f-profile"), now=now)
        await schedule(notify_db, request("f-expired", expires_in=-1), now=now)
        assert await worker.process_due() == 2
        waiting = await row(notify_db, "f-profile")
        assert (
            waiting.status == "pending" and waiting.attempts == 1 and waiting.email == "minsu.kim@example.com"
        )
        assert now + 10 <= waiting.next_attempt_at <= time.time() + 20
        assert waiting.last_error == "profile unavailable (UNAVAILABLE)"
        (retrying,) = await published(notify_db, "f-profile")
        assert retrying.outcome == "retrying" and retrying.next_attempt_at_ms == int(
            waiting.next_attempt_at * 1000
        )
        expired = await row(notify_db, "f-expired")
        assert (expired.status, expired.last_error) == (
            "not_sent",
            "the link expired before it could be sent",
        )
        assert await worker.process_due() == 0  # the retry is not due yet
        # An outage of days retries hourly: every attempt counts, the case hears 1, 2, 4, 8, ….
        for _ in range(9):
            async with notify_db.transaction() as session:
                await session.execute(
                    update(FollowUpMessage)
                    .where(FollowUpMessage.feedback_id == "f-profile")
                    .values(next_attempt_at=time.time() - 1)
                )
            assert await worker.process_due() == 1
        assert (await row(notify_db, "f-profile")).attempts == 10
        assert [e.attempt for e in await published(notify_db, "f-profile")] == [1, 2, 4, 8]
    finally:
        await upstreams.close()


class Silent:
    """A TCP server on loopback that takes connections and never answers: a send to it hangs
    until the worker stops (here: its task is cancelled)."""

    def __init__(self) -> None:
        self.connections = 0

    async def __aenter__(self) -> Silent:
        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            await reader.read()  # until the peer goes

        self._server = await asyncio.start_server(hang, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()


async def stopped_while_sending(
    worker: FollowUpWorker, db: Database, feedback_id: str, server: Silent
) -> FollowUpMessage:
    """Run a pass and stop it (as a crash would) once the message is `sending` and its server
    has the connection: inside the network call, not in the claim's commit (a cancellation
    there, under load on PostgreSQL, was not the crash this is about)."""
    task = asyncio.create_task(worker.process_due())
    deadline = time.monotonic() + 10
    while server.connections < 1 or (await row(db, feedback_id)).status != "sending":
        assert time.monotonic() < deadline and not task.done(), "never began sending"
        await asyncio.sleep(0.02)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return await row(db, feedback_id)


async def test_a_mail_whose_send_was_cut_off_is_not_sent_again(notify_db: Database, rpc: Grpc) -> None:
    """At most one message per case: a worker that stops between the send and its record left
    the row `sending`; after the lease it is failed with the reason, not sent a second time
    (SMTP has no idempotency key). No customer: profile knows nobody with the address given."""
    settings = Settings(profile_grpc_target=rpc.target, internal_token=PROFILE_TOKEN)
    message = request("f-cut-mail")
    message.customer_id = ""
    await schedule(notify_db, message, now=time.time())
    async with Silent() as smtp:
        mail = MailSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp.port}"), mail_from="voc@demo.local")
        worker = FollowUpWorker(notify_db, settings, contacts=Upstreams(settings), mail=mail, sms=None)
        cut = await stopped_while_sending(worker, notify_db, "f-cut-mail", smtp)
        assert (cut.channel, cut.recipient) == ("email", "m***@example.com")
        assert await worker.process_due() == 0  # its lease has not run out: left alone
        assert (await row(notify_db, "f-cut-mail")).status == "sending"
        # Two replicas find it past its lease at once: one settles it, one event is published.
        other = FollowUpWorker(notify_db, settings, contacts=Upstreams(settings), mail=mail, sms=None)
        after = cut.next_attempt_at + 1
        assert await asyncio.gather(worker.process_due(now=after), other.process_due(now=after)) == [0, 0]
        assert smtp.connections == 1
    settled = await row(notify_db, "f-cut-mail")
    assert (settled.status, settled.last_error, settled.email) == ("failed", follow_ups.UNKNOWN, None)
    (event,) = await published(notify_db, "f-cut-mail")
    assert (event.outcome, event.reason, event.channel, event.recipient) == (
        "failed",
        follow_ups.UNKNOWN,
        "email",
        "m***@example.com",
    )


async def test_an_sms_whose_send_was_cut_off_is_sent_again_with_the_same_key(
    notify_db: Database, rpc: Grpc
) -> None:
    """A gateway deduplicates on the Idempotency-Key, so an interrupted SMS is tried again."""
    message = request("f-cut-sms")
    message.customer_id, message.email, message.phone = "", "", "01012345678"
    await schedule(notify_db, message, now=time.time())
    settings = Settings(profile_grpc_target=rpc.target, internal_token=PROFILE_TOKEN)
    async with Silent() as silent:
        hanging = HttpGateway(
            f"http://127.0.0.1:{silent.port}/send",
            token="t",
            sender="0215880000",
            allowlist=PushAllowlist([f"127.0.0.1:{silent.port}"]),
        )
        worker = FollowUpWorker(notify_db, settings, contacts=Upstreams(settings), mail=None, sms=hanging)
        cut = await stopped_while_sending(worker, notify_db, "f-cut-sms", silent)
        await hanging.aclose()
    assert cut.channel == "sms"
    with SmsGateway(token="t", sender="0215880000", template_id="") as gateway:
        working = gateway_client(gateway)
        worker = FollowUpWorker(notify_db, settings, contacts=Upstreams(settings), mail=None, sms=working)
        try:
            assert await worker.process_due(now=cut.next_attempt_at + 1) == 1
        finally:
            await working.aclose()
        (accepted,) = gateway.accepted()
    assert accepted.idempotency_key == "follow-up.f-cut-sms"
    assert (await row(notify_db, "f-cut-sms")).status == "sent"


async def test_erasure_while_a_message_is_being_sent_drops_the_contact_it_keeps(notify_db: Database) -> None:
    """The send under way keeps its status (its outcome is recorded when it comes), but the
    address copied from the feedback goes at once: a retry asks profile, which says erased."""
    now = time.time()
    await schedule(notify_db, request("f-erased-sending"), now=now)
    async with notify_db.transaction() as session:
        claimed = await session.get(FollowUpMessage, "f-erased-sending")
        assert claimed is not None
        claimed.status = "sending"
    async with notify_db.transaction() as session:
        assert await follow_ups.forget_customer(session, customer_id="c-1", now=now) == 0
    sending = await row(notify_db, "f-erased-sending")
    assert (sending.status, sending.email, sending.phone) == ("sending", None, None)


async def test_erasure_drops_the_pending_message_and_its_contact(notify_db: Database) -> None:
    """`voc.profile.customer_erased`: notify holds a copy of the contact until the message is
    sent, and redacts it at once (the send-time check with profile stays as the second guard)."""
    now = time.time()
    await schedule(notify_db, request("f-erased", send_after=now + 7200), now=now)
    async with notify_db.transaction() as session:
        assert await follow_ups.forget_customer(session, customer_id="c-1", now=now) == 1
    dropped = await row(notify_db, "f-erased")
    assert (dropped.status, dropped.email, dropped.phone, dropped.last_error) == (
        "not_sent",
        None,
        None,
        "the customer was erased",
    )
    (event,) = await published(notify_db, "f-erased")
    assert (event.outcome, event.reason) == ("not_sent", "the customer was erased")
    async with notify_db.transaction() as session:
        assert await follow_ups.forget_customer(session, customer_id="c-1", now=now) == 0


async def test_erasure_finds_a_message_asked_for_before_the_customer_was_known(notify_db: Database) -> None:
    """Feedback asked for the follow-up before profile tied the item to the customer (no customer
    id on it): the erasure event names the customer's feedback items, and the message is theirs.
    Its customer id is filled in, so a send already under way asks profile about them on retry."""
    now = time.time()
    late = request("f-late", send_after=now + 7200)
    late.customer_id = ""
    sending = request("f-late-sending")
    sending.customer_id = ""
    await schedule(notify_db, late, now=now)
    await schedule(notify_db, sending, now=now)
    await schedule(notify_db, request("f-someone-else", send_after=now + 7200), now=now)
    await schedule(notify_db, request("f-merged", send_after=now + 7200), now=now)  # c-1's, named
    async with notify_db.transaction() as session:
        claimed = await session.get(FollowUpMessage, "f-late-sending")
        assert claimed is not None and claimed.customer_id is None
        claimed.status = "sending"
    async with notify_db.transaction() as session:
        forgotten = await follow_ups.forget_customer(
            session,
            customer_id="c-erased",
            feedback_ids=["f-late", "f-late-sending", "f-merged", "f-unknown"],
            now=now,
        )
    assert forgotten == 2
    dropped = await row(notify_db, "f-late")
    assert (dropped.status, dropped.email, dropped.customer_id) == ("not_sent", None, "c-erased")
    under_way = await row(notify_db, "f-late-sending")
    assert (under_way.status, under_way.email, under_way.customer_id) == ("sending", None, "c-erased")
    merged = await row(notify_db, "f-merged")  # named by profile: not sent, its customer kept
    assert (merged.status, merged.email, merged.customer_id) == ("not_sent", None, "c-1")
    kept = await row(notify_db, "f-someone-else")  # c-1's message, not named
    assert (kept.status, kept.email) == ("pending", "minsu.kim@example.com")
    (event,) = await published(notify_db, "f-late")
    assert (event.outcome, event.reason) == ("not_sent", "the customer was erased")
