"""The customer channels of follow-up messages against real servers on loopback: e-mail to an
aiosmtpd server (plain, STARTTLS and smtps with a certificate of our own CA), its refusals and
its absence; SMS/Alimtalk to a gateway emulator that checks requests like a provider."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from pydantic import ValidationError

from tests.support.certs import make_certs
from tests.support.sms_gateway import SmsGateway
from voc_cli.mail_sink import MailSink
from voc_cli.supervisor import free_port
from voc_notify.channels.mail import UNCONFIRMED, Mail, MailSender, parse_smtp_url
from voc_notify.channels.sms import HttpGateway, SmsMessage
from voc_notify.channels.texts import render
from voc_notify.follow_ups import last_whole_day
from voc_notify.settings import Settings
from voc_notify.webpush import PushAllowlist

URL = "http://127.0.0.1:8010/f/0193a7c0-0000-7000-8000-000000000001.abc_DEF-123"
TOKEN, SENDER, TEMPLATE = "gw-token-1", "0215880000", "VOC_FOLLOWUP_01"


def mail_to(to: str, *, store: str = "강남역점", language: str = "ko") -> Mail:
    text = render(language=language, store_name=store, url=URL)
    return Mail(to=to, subject=text.subject, text=text.text, html=text.html, message_id="follow-up.f1")


def test_the_chain_s_name_goes_before_the_store_s() -> None:
    branded = render(language="ko", store_name="강남역점", url=URL, brand="프론트라인 식당")
    assert branded.subject.startswith("[프론트라인 식당 강남역점] ")
    assert "프론트라인 식당 강남역점에 방문해 주셔서" in branded.text and branded.sms.startswith(
        "[프론트라인 식당 강남역점]"
    )
    plain = render(language="en", store_name="강남역점", url=URL)
    assert plain.subject.startswith("[강남역점] ") and "Thank you for visiting 강남역점." in plain.text
    assert Settings(VOC_BRAND_NAME="Frontline Kitchen").brand_name == "Frontline Kitchen"  # type: ignore[call-arg]


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_store_without_a_name_is_not_named_by_its_id(language: str) -> None:
    """A store missing from notify's directory has no name; without a brand the message names
    no one rather than "[] …" or the store's id."""
    text = render(language=language, store_name="", url=URL)
    thanks = "방문해 주셔서 감사합니다." if language == "ko" else "Thank you for your visit."
    assert text.subject.startswith(thanks) and text.text.startswith(thanks)
    assert f"<p>{thanks}</p>" in text.html and "<title>[" not in text.html
    assert not text.sms.startswith("[") and text.sms.endswith(URL)
    branded = render(language=language, store_name="", url=URL, brand="Frontline Kitchen")
    assert branded.subject.startswith("[Frontline Kitchen] ") and "Frontline Kitchen" in branded.text


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a certificate for 127.0.0.1 (deploy/tls/make_certs.py)."""
    certs = make_certs()
    authority = certs.Authority()
    return Path(authority.write(tmp_path_factory.mktemp("smtp-tls"), authority.issue("smtp", ["127.0.0.1"])))


def server_tls(directory: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    return context


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with MailSink(refuse=("nobody@example.com",)) as server:
        yield server


async def test_a_follow_up_mail_arrives_as_plain_text_and_escaped_html(sink: MailSink) -> None:
    sender = MailSender(parse_smtp_url(f"smtp://127.0.0.1:{sink.port}"), mail_from="VoC <voc@demo.local>")
    result = await sender.send(mail_to("minsu.kim@example.com", store="강남역점 <script>"))
    assert result.status == "sent"
    (mail,) = sink.wait(1)
    assert mail.rcpt_tos == ("minsu.kim@example.com",) and mail.mail_from == "voc@demo.local"
    assert mail.subject.startswith("[강남역점 <script>]") and "해결되었나요" in mail.subject
    assert mail.message.get_content_type() == "multipart/alternative"
    assert URL in mail.part("plain") and "말씀해 주신 문제는 잘 해결되었나요?" in mail.part("plain")
    html = mail.part("html")
    assert f'href="{URL}"' in html and "<script>" not in html and "강남역점 &lt;script&gt;" in html
    assert mail.message["Message-ID"] == "<follow-up.f1@demo.local>" and not mail.tls


async def test_english_for_an_english_feedback(sink: MailSink) -> None:
    # A bare sender address is shown by the brand's name (VOC_BRAND_NAME), not as a bare address.
    sender = MailSender(
        parse_smtp_url(f"smtp://127.0.0.1:{sink.port}"),
        mail_from="voc@demo.local",
        display_name="프론트라인 식당",
    )
    assert (
        await sender.send(mail_to("jane@example.com", store="Busan Station", language="en"))
    ).status == "sent"
    (mail,) = sink.wait(1)
    assert (
        str(mail.message["From"]) == "프론트라인 식당 <voc@demo.local>" and mail.mail_from == "voc@demo.local"
    )
    assert mail.subject == "[Busan Station] Thank you for your visit. Did we put it right?"
    assert "Please answer once at the link below" in mail.part("plain")


@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "smtps"])
async def test_tls_to_a_relay_with_a_private_ca(tls_dir: Path, starttls: bool) -> None:
    with MailSink(tls=server_tls(tls_dir), starttls=starttls) as server:
        url = f"smtp://127.0.0.1:{server.port}?starttls=1" if starttls else f"smtps://127.0.0.1:{server.port}"
        sender = MailSender(parse_smtp_url(url), mail_from="voc@demo.local", ca_file=str(tls_dir / "ca.crt"))
        assert (await sender.send(mail_to("minsu.kim@example.com"))).status == "sent"
        (mail,) = server.wait(1)
        assert mail.tls
        # Without our CA the certificate is not trusted: retried (fixable), never sent in clear.
        untrusting = MailSender(parse_smtp_url(url), mail_from="voc@demo.local")
        result = await untrusting.send(mail_to("minsu.kim@example.com"))
        assert result.status == "retry" and len(server.received()) == 1


async def test_plain_smtp_upgrades_when_the_server_offers_starttls(tls_dir: Path) -> None:
    """smtp:// without ?starttls=1 still encrypts when the server offers STARTTLS (passing
    start_tls=False had turned it off): this server requires it, and its certificate is one no
    CA we know signed (a relay's self-signed one): opportunistic TLS does not check it, as plain
    SMTP, the alternative, could not either."""
    with MailSink(tls=server_tls(tls_dir), starttls=True) as server:
        target = parse_smtp_url(f"smtp://127.0.0.1:{server.port}")
        assert target.start_tls is None
        sender = MailSender(target, mail_from="voc@demo.local")
        assert (await sender.send(mail_to("minsu.kim@example.com"))).status == "sent"
        (mail,) = server.wait(1)
        assert mail.tls
        # Asked for (?starttls=1), it is checked: without our CA, retried, never sent.
        required = MailSender(
            parse_smtp_url(f"smtp://127.0.0.1:{server.port}?starttls=1"), mail_from="voc@demo.local"
        )
        assert (await required.send(mail_to("minsu.kim@example.com"))).status == "retry"
        assert len(server.received()) == 1


async def test_a_refused_recipient_fails_once_with_the_reason_masked(sink: MailSink) -> None:
    sender = MailSender(parse_smtp_url(f"smtp://127.0.0.1:{sink.port}"), mail_from="voc@demo.local")
    result = await sender.send(mail_to("nobody@example.com"))
    assert result.status == "failed"
    assert result.detail.startswith("recipient refused: 550 5.1.1") and "nobody@" not in result.detail
    invalid = await sender.send(mail_to("not an address"))
    assert (invalid.status, invalid.detail) == ("failed", "invalid e-mail address")
    assert sink.received() == []


class _NoRelay:
    """A relay set up to refuse relaying for us: every recipient gets 554 5.7.1."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return f"554 5.7.1 <{address}>: Relay access denied"


async def test_a_relay_refusing_to_relay_is_our_setup_and_retried() -> None:
    """5.7.x at RCPT is the relay's policy about us (not the customer's mailbox): the mail is
    kept and tried again once the relay is fixed, not failed for good."""
    controller = Controller(_NoRelay(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        sender = MailSender(parse_smtp_url(f"smtp://127.0.0.1:{controller.port}"), mail_from="voc@demo.local")
        result = await sender.send(mail_to("minsu.kim@example.com"))
        assert result.status == "retry" and result.detail.startswith("recipient refused: 554 5.7.1")
        assert "minsu" not in result.detail
    finally:
        controller.stop()


async def test_no_smtp_server_is_a_transient_failure() -> None:
    sender = MailSender(
        parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"), mail_from="voc@demo.local", timeout=2
    )
    result = await sender.send(mail_to("minsu.kim@example.com"))
    assert result.status == "retry" and result.detail.startswith("SMTP server unavailable")


class _SlowServer:
    """An aiosmtpd handler that takes the message and answers its DATA (or its RCPT) only after
    `delay` seconds: a server that did the work but whose answer never reached us in time."""

    def __init__(self, *, delay: float, slow_rcpt: bool = False) -> None:
        self.delay, self.slow_rcpt, self.taken = delay, slow_rcpt, 0

    async def handle_RCPT(
        self, server: object, session: object, envelope: Envelope, address: str, options: object
    ) -> str:
        if self.slow_rcpt:
            await asyncio.sleep(self.delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        self.taken += 1
        await asyncio.sleep(self.delay)
        return "250 OK queued"


@pytest.mark.parametrize("slow_rcpt", [False, True], ids=["after-data", "before-data"])
async def test_an_unconfirmed_message_is_not_sent_again(slow_rcpt: bool) -> None:
    """A timeout once the body is on its way may leave the message delivered: failed, not retried
    (a follow-up at most once). A timeout before DATA left nothing there: retried. (The final
    reply's own timeout is 30 s by default: a server scanning the message answers slowly.)"""
    handler = _SlowServer(delay=1.5, slow_rcpt=slow_rcpt)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        sender = MailSender(
            parse_smtp_url(f"smtp://127.0.0.1:{controller.port}"),
            mail_from="voc@demo.local",
            timeout=0.5,
            data_timeout=0.5,
        )
        result = await sender.send(mail_to("minsu.kim@example.com"))
    finally:
        controller.stop()
    if slow_rcpt:
        assert result.status == "retry" and result.detail.startswith("SMTP server unavailable")
        assert handler.taken == 0
    else:
        assert result.status == "failed" and result.detail.startswith(UNCONFIRMED)
        assert handler.taken == 1
    slow_scanner = _SlowServer(delay=1.0)
    controller = Controller(slow_scanner, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        patient = MailSender(
            parse_smtp_url(f"smtp://127.0.0.1:{controller.port}"), mail_from="voc@demo.local", timeout=0.5
        )
        assert (await patient.send(mail_to("minsu.kim@example.com"))).status == "sent"
    finally:
        controller.stop()


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.port, plain.use_tls, plain.start_tls, plain.username) == (25, False, None, None)
    sub = parse_smtp_url("smtp://voc%40example.com:p%40ss@mail.example.com:587?starttls=1")
    assert (sub.port, sub.start_tls, sub.username, sub.password) == (587, True, "voc@example.com", "p@ss")
    tls = parse_smtp_url("smtps://voc@mail.example.com", password="from-env")
    assert (tls.port, tls.use_tls, tls.start_tls, tls.password) == (465, True, False, "from-env")
    for bad, says in (
        ("http://mail.example.com", "smtp://host:port"),
        ("smtp://", "no host"),
        ("smtp://mail.example.com?tls=1", "unknown option"),
        ("smtps://mail.example.com?starttls=1", "TLS already"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_smtp_url(bad)


def test_settings_refuse_a_password_that_could_go_in_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOC_MAIL_FROM", "voc@example.com")
    monkeypatch.setenv("VOC_SMTP_URL", "smtp://voc:secret@mail.example.com:587")
    with pytest.raises(ValidationError, match="smtps:// or \\?starttls=1"):
        Settings()
    monkeypatch.setenv("VOC_SMTP_URL", "smtp://voc@mail.example.com:587")
    monkeypatch.setenv("VOC_SMTP_PASSWORD", "secret")
    with pytest.raises(ValidationError, match="VOC_SMTP_PASSWORD over plain smtp://"):
        Settings()
    for fine in (
        "smtp://voc@mail.example.com:587?starttls=1",
        "smtps://voc@mail.example.com",
        "smtp://voc@127.0.0.1:2525",  # a relay on this host
        "smtp://mail.example.com:25",  # no login: nothing secret to lose
    ):
        monkeypatch.setenv("VOC_SMTP_URL", fine)
        assert Settings().smtp_url == fine


def test_settings_refuse_half_a_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOC_SMTP_URL", "smtp://127.0.0.1:2525")
    with pytest.raises(ValidationError, match="VOC_MAIL_FROM"):
        Settings()
    monkeypatch.setenv("VOC_MAIL_FROM", "voc@demo.local")
    monkeypatch.setenv("VOC_SMS_GATEWAY_URL", "http://sms.example.com/v1/messages")
    monkeypatch.setenv("VOC_SMS_SENDER", SENDER)
    with pytest.raises(ValidationError, match="VOC_SMS_ALLOWED_HOSTS"):
        Settings()  # plain http to a public host
    monkeypatch.setenv("VOC_SMS_GATEWAY_URL", "https://sms.example.com/v1/messages")
    assert Settings().sms_allowlist().allows("https://sms.example.com/v1/messages")


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    with SmsGateway(token=TOKEN, sender=SENDER, template_id=TEMPLATE) as server:
        yield server


def sms(to: str = "01012345678") -> SmsMessage:
    text = render(language="ko", store_name="강남역점", url=URL)
    return SmsMessage(
        to=to,
        text=text.sms,
        template_id=TEMPLATE,
        variables={"store": "강남역점", "question": text.question, "url": URL},
        message_id="follow-up.f1",
    )


def adapter(gateway: SmsGateway, *, token: str = TOKEN, hosts: str = "127.0.0.1:*") -> HttpGateway:
    return HttpGateway(gateway.url, token=token, sender=SENDER, allowlist=PushAllowlist([hosts]), timeout=2)


async def test_the_gateway_takes_a_valid_message_once(gateway: SmsGateway) -> None:
    client = adapter(gateway)
    try:
        assert (await client.send(sms())).status == "sent"
        assert (await client.send(sms())).status == "sent"  # the same idempotency key: one message
        (message,) = gateway.accepted()
        assert (
            message.body["to"] == "01012345678"
            and URL in message.text
            and message.text.startswith("[강남역점]")
        )
    finally:
        await client.aclose()


async def test_gateway_refusals_and_outages(gateway: SmsGateway) -> None:
    client = adapter(gateway)
    try:
        wrong_number = await client.send(sms(to="0212345678"))  # a landline: no Alimtalk
        assert wrong_number.status == "failed"
        assert (
            wrong_number.detail
            == "gateway refused the message: HTTP 400 Bad Request (invalid_recipient_number)"
        )
        gateway.fail_next(503)
        assert (await client.send(sms())).status == "retry"
        assert (await client.send(sms())).status == "sent"
        bad_token = adapter(gateway, token="wrong")
        assert (await bad_token.send(sms())).status == "failed"
        await bad_token.aclose()
        not_allowed = adapter(gateway, hosts="sms.example.com")
        refused = await not_allowed.send(sms())
        assert refused.status == "retry" and refused.detail.startswith("gateway not allowed")
        await not_allowed.aclose()
        assert len(gateway.accepted()) == 1
    finally:
        await client.aclose()


def test_a_second_ask_says_so_and_every_message_says_until_when_the_link_works() -> None:
    """After an unhappy answer and a second fix, the customer is asked about the second try (the
    same message again read as a form letter that ignored them); the mail gives the link's last
    day, in words, and none claims to be "one-time"."""
    again = render(language="en", store_name="Gangnam", url=URL, again=True, until=date(2026, 12, 21))
    assert again.subject == "[Gangnam] Thank you for telling us again. Did we put it right this time?"
    assert again.text.startswith("Thank you for telling Gangnam again.")
    assert "The link works until December 21." in again.text and "one-time" not in again.text
    assert again.sms.startswith("[Gangnam] Did we put it right this time?") and again.question.endswith(
        "this time?"
    )
    first = render(language="ko", store_name="강남역점", url=URL, until=date(2026, 12, 21))
    assert "답변 링크는 12월 21일까지 열립니다." in first.text and "1회성" not in first.text
    assert 'name="viewport"' in first.html and "답변 링크는 12월 21일까지" in first.html


def test_the_mail_promises_the_last_whole_day_and_a_brand_with_a_newline_still_sends() -> None:
    """A link made at 09:00 dies at 09:00 fourteen days on: the mail promises the day before,
    in the store's zone, whatever the hour there. A brand name read from a file
    with its newline would have failed every mail ("address parts cannot contain CR or LF")."""
    seoul_9am = datetime(2026, 12, 21, 9, 0, tzinfo=ZoneInfo("Asia/Seoul")).timestamp()
    assert last_whole_day(seoul_9am, "Asia/Seoul") == date(2026, 12, 20)
    utc_0030 = datetime(2026, 12, 21, 0, 30, tzinfo=UTC).timestamp()
    assert last_whole_day(utc_0030, "UTC") == date(2026, 12, 20)
    assert last_whole_day(utc_0030, "Asia/Seoul") == date(2026, 12, 20)  # 09:30 on the 21st there
    sender = MailSender(
        parse_smtp_url("smtp://127.0.0.1:25"), mail_from="voc@demo.local", display_name="Frontline\n"
    )
    built = sender.build(Mail(to="a@example.com", subject="s", text="t", html="<p>h</p>", message_id="m"))
    assert str(built["From"]) == "Frontline <voc@demo.local>"
