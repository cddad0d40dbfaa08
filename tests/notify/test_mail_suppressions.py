"""Mail suppression (#19): an address a mail server refused for good, at RCPT on the real SMTP
sink or in a bounce posted to the delivery-report route, is not mailed a follow-up again; the
message goes by SMS (the gateway emulator) or the case says why it went nowhere. Admins find and
lift a suppression through notify's API; an erasure removes the customer's."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from tests.conftest import DatabaseFactory
from tests.notify.conftest import ADMIN, Notify, make_notify
from tests.notify.test_follow_up_worker import gateway_client, published, request, row, schedule
from tests.profile.conftest import INTERNAL_TOKEN as PROFILE_TOKEN
from tests.profile.conftest import Grpc
from tests.support.sms_gateway import SmsGateway
from voc_cli.mail_sink import MailSink, delivery_status_notification
from voc_notify import auth, follow_ups, suppressions
from voc_notify.channels import hard_bounce
from voc_notify.channels.mail import MailSender, parse_smtp_url
from voc_notify.channels.sms import HttpGateway
from voc_notify.clients import Upstreams
from voc_notify.follow_ups import FollowUpWorker
from voc_notify.models import MailSuppression, audit_table
from voc_notify.settings import Settings

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


async def listed(notify: Notify, **params: str) -> list[dict[str, object]]:
    async with notify.client() as client:
        answer = await client.get(ROUTE, params=params, headers=ADMIN)
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
    assert [s["feedback_id"] for s in await listed(notify, email=GONE)] == ["f-gone-nosms"]


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
    assert await listed(notify, email="strict@example.com") == []
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
    (found,) = await listed(notify, email=" GONE@example.com")
    assert await listed(notify, email="someone.else@example.com") == []
    key = str(found["address_key"])
    async with notify.client() as client:
        lifted = await client.delete(f"{ROUTE}/{key}", headers=ADMIN)
        again = await client.delete(f"{ROUTE}/{key}", headers=ADMIN)
        malformed = await client.delete(f"{ROUTE}/not-a-key", headers=ADMIN)
        too_long = await client.get(ROUTE, params={"email": "x" * 255}, headers=ADMIN)
        anonymous = await client.get(ROUTE)
    assert lifted.status_code == 204, lifted.text
    assert again.status_code == 404 and again.headers["content-type"] == "application/problem+json"
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["field"] == "path.address_key"
    assert too_long.status_code == 422 and anonymous.status_code == 401
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
    worker = channels.worker(notify, sms=False)
    await ask(notify, "f-erased-gone", email=GONE)
    assert await worker.process_due() == 1
    assert (await row(notify.database, "f-erased-gone")).recipient_key is not None
    async with notify.database.transaction() as session:
        assert await suppressions.forget_customer(session, customer_id="c-1", feedback_ids=[]) == 1
        await follow_ups.forget_customer(session, customer_id="c-1", now=time.time())
    assert (await row(notify.database, "f-erased-gone")).recipient_key is None
    async with notify.database.session() as session:
        assert list(await session.scalars(select(MailSuppression))) == []
    # By the erased items too (a suppression made before profile knew whose the address was).
    async with notify.database.transaction() as session:
        await suppressions.suppress(
            session, key="k" * 64, recipient="***", customer_id=None, feedback_id="f-x", reason="", now=1.0
        )
        assert await suppressions.forget_customer(session, customer_id="c-other", feedback_ids=["f-x"]) == 1
