"""Mail suppression (#19): an address a mail server refused for good, at RCPT on the real SMTP
sink or in a bounce posted to the delivery-report route, is not mailed a follow-up again; the
message goes by SMS (the gateway emulator) or the case says why it went nowhere. Admins find and
lift a suppression through notify's API; an erasure removes the customer's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select, update

from tests.conftest import DatabaseFactory
from tests.notify.conftest import ADMIN, Notify, make_notify
from tests.notify.test_follow_up_worker import gateway_client, published, request, row, schedule
from tests.profile.conftest import INTERNAL_TOKEN as PROFILE_TOKEN
from tests.profile.conftest import Grpc
from tests.support.sms_gateway import SmsGateway
from voc_cli.mail_sink import MailSink, delivery_status_notification
from voc_notify import auth, follow_ups, suppressions, tombstones
from voc_notify.channels import hard_bounce
from voc_notify.channels.mail import MailSender, parse_smtp_url
from voc_notify.channels.sms import HttpGateway
from voc_notify.clients import Upstreams
from voc_notify.follow_ups import FollowUpWorker
from voc_notify.models import FollowUpMessage, MailSuppression, audit_table
from voc_notify.settings import Settings
from voc_platform import dbsync

GONE = "gone@example.com"
TOKEN = "delivery-report-token-for-suppression-tests"
ROUTE = "/v1/admin/mail-suppressions"
MAIL_FROM = "Frontline VoC <voc@demo.local>"


def test_only_codes_that_condemn_the_address_are_hard_bounces() -> None:
    for answer in (
        "5.1.1; smtp; 550 5.1.1 <***@***>: Recipient address rejected: User unknown",
        "550 5.1.1 <***@***>: user unknown",
        "5.1.10; smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound",
        "smtp; 550 5.2.1 mailbox disabled",
        "5.4.4; x-postfix; Host or domain name not found",
    ):
        assert hard_bounce(answer), answer
    for answer in (
        "550 5.7.1 Message rejected as spam",  # policy: the address may be fine
        "5.2.2; smtp; 552 5.2.2 Mailbox full",
        "4.1.1; smtp; 450 4.1.1 try later",
        "550 No such user here",  # no enhanced code: a bare 550 is used for spam too
        "5.2.10 something",
        # Our sender's address, not the customer's: a refusal of our own setup must not condemn
        # every address it touches (RFC 3463 X.1.7, X.1.8; X.1.0 is the catch-all).
        "550 5.1.8 <voc@demo.local>: Sender address rejected: Domain not found",
        "5.1.7; smtp; 553 5.1.7 bad sender mailbox syntax",
        "5.1.0; smtp; 550 5.1.0 address rejected",
        "550 5.1.1 Sender address rejected: not owned by user",
        "",
    ):
        assert not hard_bounce(answer), answer


@dataclass
class Channels:
    sink: MailSink
    gateway: SmsGateway
    mail: MailSender
    sms: HttpGateway
    upstreams: Upstreams
    settings: Settings

    def worker(self, notify: Notify, *, sms: bool = True) -> FollowUpWorker:
        return FollowUpWorker(
            notify.database,
            self.settings,
            contacts=self.upstreams,
            mail=self.mail,
            sms=self.sms if sms else None,
        )


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with MailSink(refuse=(GONE,)) as server:
        yield server


@pytest.fixture
async def channels(sink: MailSink, rpc: Grpc) -> AsyncIterator[Channels]:
    settings = Settings(profile_grpc_target=rpc.target, internal_token=PROFILE_TOKEN)
    upstreams = Upstreams(settings)
    with SmsGateway(token="t", sender="0215880000", template_id="") as gateway:
        sms = gateway_client(gateway)
        mail = MailSender(parse_smtp_url(sink.url), mail_from="voc@demo.local")
        try:
            yield Channels(sink, gateway, mail, sms, upstreams, settings)
        finally:
            await sms.aclose()
            await upstreams.close()


@pytest.fixture
async def notify(databases: DatabaseFactory) -> Notify:
    return await make_notify(
        databases, auth.hash_password("unused-password-1"), delivery_report_token=TOKEN, mail_from=MAIL_FROM
    )


async def ask(notify: Notify, feedback_id: str, *, email: str, phone: str = "") -> None:
    message = request(feedback_id)
    message.email, message.phone = email, phone
    await schedule(notify.database, message, now=time.time())


async def listed(notify: Notify, email: str | None = None) -> list[dict[str, object]]:
    """The latest suppressions, or the one of `email` (searched: the address in a body)."""
    async with notify.client() as client:
        if email is None:
            answer = await client.get(ROUTE, headers=ADMIN)
        else:
            answer = await client.post(f"{ROUTE}/search", json={"email": email}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, object]] = answer.json()["suppressions"]
    return found


async def test_an_address_refused_for_good_is_never_mailed_again_and_the_message_goes_by_sms(
    notify: Notify, channels: Channels
) -> None:
    worker = channels.worker(notify)
    await ask(notify, "f-gone-1", email=GONE, phone="01012345678")
    assert await worker.process_due() == 1  # refused at RCPT: failed by e-mail, due again by SMS
    assert await worker.process_due() == 1
    assert [(e.outcome, e.channel) for e in await published(notify.database, "f-gone-1")] == [
        ("failed", "email"),
        ("sent", "sms"),
    ]
    (refused,) = [e for e in await published(notify.database, "f-gone-1") if e.outcome == "failed"]
    assert refused.reason.startswith("recipient refused: 550 5.1.1") and GONE not in refused.reason
    (suppressed,) = await listed(notify)
    assert suppressed["recipient"] == "g***@example.com" and suppressed["feedback_id"] == "f-gone-1"
    assert suppressed["customer_id"] == "c-1" and GONE not in str(suppressed)
    assert suppressed["expires_at"] == pytest.approx(
        float(str(suppressed["suppressed_at"])) + suppressions.SUPPRESSION_SECONDS
    )
    # The next cases of that address: by SMS at once; with no phone, nowhere, saying why; another
    # address is mailed as ever. The sink never hears of the suppressed address again.
    await ask(notify, "f-gone-2", email="Gone@Example.com ", phone="01012345678")
    await ask(notify, "f-gone-3", email=GONE)
    await ask(notify, "f-other", email="kept@example.com")
    assert await worker.process_due() == 3
    assert [(e.outcome, e.channel) for e in await published(notify.database, "f-gone-2")] == [("sent", "sms")]
    (nowhere,) = await published(notify.database, "f-gone-3")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert nowhere.outcome == "not_sent" and nowhere.reason.startswith(
        "no configured channel reaches the customer "
        f"({suppressions.BOUNCED_BEFORE} (5.1.1 on {day}); no phone on record; email, sms configured)"
    ), nowhere.reason
    assert [m.rcpt_tos for m in channels.sink.received()] == [("kept@example.com",)]
    assert len(channels.gateway.accepted()) == 2


async def test_without_sms_a_refused_address_fails_once_and_is_suppressed(
    notify: Notify, channels: Channels
) -> None:
    worker = channels.worker(notify, sms=False)
    await ask(notify, "f-gone-nosms", email=GONE, phone="01012345678")
    assert await worker.process_due() == 1
    failed = await row(notify.database, "f-gone-nosms")
    assert (failed.status, failed.email, failed.phone) == ("failed", None, None)
    assert [s["feedback_id"] for s in await listed(notify, GONE)] == ["f-gone-nosms"]


async def test_a_hard_bounce_suppresses_the_address_and_a_policy_bounce_does_not(
    notify: Notify, channels: Channels
) -> None:
    """Both mails are taken by the relay; the recipients' servers bounce them later (the DSN
    posted to the delivery-report route as a bounce pipe does)."""
    worker = channels.worker(notify, sms=False)
    await ask(notify, "f-bounced", email="left@example.com")
    await ask(notify, "f-spam", email="strict@example.com")
    assert await worker.process_due() == 2
    mails = {m.rcpt_tos[0]: m for m in channels.sink.wait(2)}
    bounces = [
        delivery_status_notification(
            mails["left@example.com"], "left@example.com", reporting_mta="relay.demo"
        ),
        delivery_status_notification(
            mails["strict@example.com"],
            "strict@example.com",
            reporting_mta="relay.demo",
            status="5.7.1",
            diagnostic="550 5.7.1 Message rejected as spam",
        ),
    ]
    async with notify.client() as client:
        for bounce in bounces:
            answer = await client.post(
                "/v1/follow-ups/delivery-reports",
                content=bounce,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "message/rfc822"},
            )
            assert answer.status_code == 200 and answer.json()["recorded"] == 1, answer.text
    (suppressed,) = await listed(notify)
    assert suppressed["feedback_id"] == "f-bounced" and str(suppressed["reason"]).startswith(
        "5.1.1; smtp; 550"
    )
    assert await listed(notify, "strict@example.com") == []
    # The next follow-up to the bounced address is not mailed.
    await ask(notify, "f-bounced-again", email="left@example.com")
    assert await worker.process_due() == 1
    (again,) = await published(notify.database, "f-bounced-again")
    assert again.outcome == "not_sent" and suppressions.BOUNCED_BEFORE in again.reason


async def test_an_admin_finds_and_lifts_a_suppression_and_the_address_is_mailed_again(
    notify: Notify, channels: Channels
) -> None:
    worker = channels.worker(notify, sms=False)
    await ask(notify, "f-fixed-1", email=GONE)
    assert await worker.process_due() == 1
    (found,) = await listed(notify, " GONE@example.com")
    assert await listed(notify, "someone.else@example.com") == []
    key = str(found["address_key"])
    async with notify.client() as client:
        lifted = await client.delete(f"{ROUTE}/{key}", headers=ADMIN)
        again = await client.delete(f"{ROUTE}/{key}", headers=ADMIN)
        malformed = await client.delete(f"{ROUTE}/not-a-key", headers=ADMIN)
        too_long = await client.post(f"{ROUTE}/search", json={"email": "x" * 255}, headers=ADMIN)
        blank = await client.post(f"{ROUTE}/search", json={"email": "  "}, headers=ADMIN)
        anonymous = await client.get(ROUTE)
    assert lifted.status_code == 204, lifted.text
    assert again.status_code == 404 and again.headers["content-type"] == "application/problem+json"
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["field"] == "path.address_key"
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "body.email"
    assert blank.status_code == 422 and anonymous.status_code == 401
    async with notify.database.session() as session:
        actions = [
            (r.action, r.target, r.detail)
            for r in await session.execute(
                select(audit_table.c.action, audit_table.c.target, audit_table.c.detail)
            )
        ]
    assert ("mail_suppression.lifted", f"mail-suppression:{key}") in [(a, t) for a, t, _ in actions]
    assert all(GONE not in str(detail) for _, _, detail in actions)
    # Lifted: the next follow-up is mailed (the customer says the mailbox works now).
    channels.sink.refuse.clear()
    await ask(notify, "f-fixed-2", email=GONE)
    assert await worker.process_due() == 1
    assert [m.rcpt_tos for m in channels.sink.wait(1)] == [(GONE,)]


async def test_an_erasure_removes_the_customers_suppressions_and_keys(
    notify: Notify, channels: Channels
) -> None:
    """In erasure's order (`erasure.consumers`): the suppressions of the addresses their follow-ups
    went to (even one a later bounce of another customer's took over), then the keys on their
    messages. A bounce of their mail that comes after suppresses nothing."""
    worker = channels.worker(notify, sms=False)
    await ask(notify, "f-erased-gone", email=GONE)
    await ask(notify, "f-erased-sent", email="left@example.com")
    assert await worker.process_due() == 2
    assert (await row(notify.database, "f-erased-gone")).recipient_key is not None
    async with notify.database.transaction() as session:
        # Another customer's bounce at the same address took the row over.
        await suppressions.suppress(
            session,
            key=suppressions.address_key(GONE, secret=channels.settings.jwt_secret),
            recipient="g***@example.com",
            customer_id="c-other",
            feedback_id="f-other-customer",
            reason="5.1.1",
            now=time.time(),
        )
    async with notify.database.transaction() as session:
        await tombstones.remember(
            session, customer_id="c-1", feedback_ids=["f-erased-gone", "f-erased-sent"], now=time.time()
        )
    async with notify.database.transaction() as session:
        assert await suppressions.forget_customer(session, customer_id="c-1", feedback_ids=[]) == 1
        await follow_ups.forget_customer(session, customer_id="c-1", now=time.time())
    assert (await row(notify.database, "f-erased-gone")).recipient_key is None
    async with notify.database.session() as session:
        assert list(await session.scalars(select(MailSuppression))) == []
    (mail,) = [m for m in channels.sink.wait(1) if m.rcpt_tos == ("left@example.com",)]
    async with notify.client() as client:
        late = await client.post(
            "/v1/follow-ups/delivery-reports",
            content=delivery_status_notification(mail, "left@example.com", reporting_mta="relay.demo"),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "message/rfc822"},
        )
    assert late.status_code == 200 and late.json()["recorded"] == 1, late.text
    assert await listed(notify) == []
    # By the erased items too (a suppression made before profile knew whose the address was).
    async with notify.database.transaction() as session:
        await suppressions.suppress(
            session, key="k" * 64, recipient="***", customer_id=None, feedback_id="f-x", reason="", now=1.0
        )
        # The other customer's row went with the erased customer's address above.
        assert await suppressions.forget_customer(session, customer_id="c-other", feedback_ids=["f-x"]) == 1


async def test_a_bounce_after_the_mail_was_delivered_suppresses_nothing(
    notify: Notify, channels: Channels
) -> None:
    """A mail the recipient's server reported delivered that bounces afterwards came back from
    further down a forwarding chain: the customer's own mailbox works."""
    worker = channels.worker(notify, sms=False)
    await ask(notify, "f-forwarded", email="forwards@example.com")
    assert await worker.process_due() == 1
    (mail,) = channels.sink.wait(1)
    async with notify.client() as client:
        delivered = await client.post(
            "/v1/follow-ups/delivery-reports",
            json={"message_id": "follow-up.f-forwarded", "status": "delivered", "channel": "email"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        bounced = await client.post(
            "/v1/follow-ups/delivery-reports",
            content=delivery_status_notification(mail, "forwards@example.com", reporting_mta="relay.demo"),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "message/rfc822"},
        )
    assert delivered.json()["recorded"] == 1 and bounced.json()["recorded"] == 1, bounced.text
    assert (await row(notify.database, "f-forwarded")).status == "undelivered"
    assert await listed(notify) == []


async def test_a_suppressed_address_given_with_the_feedback_gives_way_to_the_one_on_record(
    notify: Notify, channels: Channels, rpc: Grpc
) -> None:
    """The customer left the old address on the kiosk, but the CRM has their new one: mailed there."""
    upsert = await rpc.profile.client.post(
        "/v1/customers",
        headers=rpc.profile.admin,
        json={
            "customers": [{"loyalty_id": "L-MOVED", "email": "new.box@example.com", "phone": "01055556666"}]
        },
    )
    assert upsert.status_code == 200, upsert.text
    worker = channels.worker(notify, sms=False)
    await ask(notify, "f-old-box", email=GONE)
    assert await worker.process_due() == 1  # refused: suppressed
    message = request("f-moved")
    message.customer_id, message.email, message.phone = "", GONE, "01055556666"
    await schedule(notify.database, message, now=time.time())
    assert await worker.process_due() == 1
    assert [(e.outcome, e.channel, e.recipient) for e in await published(notify.database, "f-moved")] == [
        ("sent", "email", "n***@example.com")
    ]
    assert [m.rcpt_tos for m in channels.sink.received()] == [("new.box@example.com",)]


async def test_a_refusal_goes_on_by_sms_only_while_the_link_works(notify: Notify, channels: Channels) -> None:
    worker = channels.worker(notify)
    message = request("f-short-link")
    message.email, message.phone = GONE, "01012345678"
    await schedule(notify.database, message, now=time.time())
    async with notify.database.transaction() as session:  # the link dies while it is being mailed
        stored = await session.get(FollowUpMessage, "f-short-link")
        assert stored is not None
        stored.expires_at = time.time() + 0.3
    assert await worker.process_due() == 1
    await asyncio.sleep(0.4)
    await worker.process_due()
    done = await row(notify.database, "f-short-link")
    assert done.status in ("failed", "not_sent") and channels.gateway.accepted() == []
    assert [e.outcome for e in await published(notify.database, "f-short-link")][-1] in ("failed", "not_sent")


async def test_suppressions_and_message_keys_are_forgotten_in_time(
    notify: Notify, channels: Channels
) -> None:
    worker = channels.worker(notify, sms=False)
    await ask(notify, "f-old", email=GONE)
    assert await worker.process_due() == 1
    now = time.time()
    async with notify.database.transaction() as session:
        await session.execute(
            update(FollowUpMessage)
            .where(FollowUpMessage.feedback_id == "f-old")
            .values(created_at=now - suppressions.KEY_SECONDS - 60)
        )
        await session.execute(
            update(MailSuppression).values(suppressed_at=now - suppressions.SUPPRESSION_SECONDS + 60)
        )
    assert await dbsync.write(notify.database, suppressions.prune_sync, now=now) == 0  # a minute left
    assert (await row(notify.database, "f-old")).recipient_key is None  # past the bounces' month
    assert len(await listed(notify)) == 1
    assert await dbsync.write(notify.database, suppressions.prune_sync, now=now + 120) == 1
    assert await listed(notify) == []
