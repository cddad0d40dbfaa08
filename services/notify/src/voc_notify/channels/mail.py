"""E-mail over real SMTP (aiosmtplib): `VOC_SMTP_URL` parsed once, one message per send,
the server's answer classified. Recipient-level 5xx and invalid addresses are permanent; a
server that is down, busy (4xx) or refuses our login is transient (fixing it loses nothing).
A connection lost or timed out once the message body is on its way (after the DATA command's
354) is neither: the server may have taken it (RFC 5321 §6.1's duplicate problem), and SMTP has
no idempotency key, so it is a failure that is not retried: a follow-up goes at most once."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import Default

from voc_notify.channels import SendResult, hard_bounce, server_said

_TRUE = ("1", "true", "yes", "on")
# Deliberately strict: one @, no spaces or angle brackets, a dotted domain (or localhost).
_ADDRESS = re.compile(
    r"^[^@\s<>()\[\],;:\"]{1,64}@(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]{2,}$|^[^@\s<>]+@localhost$"
)


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where mail goes: its fields are `aiosmtplib.send`'s arguments of the same names."""

    hostname: str
    port: int
    use_tls: bool  # smtps://: TLS from the first byte
    # True (smtp://…?starttls=1): upgrade after EHLO or fail; None (smtp://): upgrade when the
    # server offers it; False: smtps://, TLS already.
    start_tls: bool | None
    username: str | None
    password: str | None

    def describe(self) -> str:
        mode = "smtps" if self.use_tls else ("smtp+starttls" if self.start_tls else "smtp")
        return f"{mode}://{self.hostname}:{self.port}"


def parse_smtp_url(url: str, *, password: str = "") -> SmtpTarget:
    """`smtp://[user[:password]@]host[:port][?starttls=1]` or `smtps://…`; the password may
    come separately (`VOC_SMTP_PASSWORD`). ValueError says what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("smtp://host:port or smtps://host:port (optionally ?starttls=1)")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    query = parse_qs(parts.query)
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"unknown option {sorted(unknown)[0]!r} (only starttls=1)")
    start_tls = query.get("starttls", ["0"])[-1].lower() in _TRUE
    if start_tls and parts.scheme == "smtps":
        raise ValueError("smtps:// is TLS already; starttls=1 is for smtp://")
    username = unquote(parts.username) if parts.username else None
    secret = unquote(parts.password) if parts.password else (password or None)
    return SmtpTarget(
        hostname=parts.hostname,
        port=port or (465 if parts.scheme == "smtps" else 25),
        use_tls=parts.scheme == "smtps",
        start_tls=True if start_tls else (False if parts.scheme == "smtps" else None),
        username=username,
        password=secret if username else None,
    )


def clear_text_login(target: SmtpTarget) -> bool:
    """Whether a password could go unencrypted: smtp:// without ?starttls=1 to a host that is
    not loopback (a server, or someone between, that offers no STARTTLS gets it in clear)."""
    if target.password is None or target.use_tls or target.start_tls:
        return False
    if target.hostname == "localhost":
        return False
    try:
        return not ipaddress.ip_address(target.hostname).is_loopback
    except ValueError:
        return True


def valid_address(address: str) -> bool:
    return len(address) <= 254 and _ADDRESS.match(address) is not None


def mask_address(address: str) -> str:
    """ "k***@example.com": enough for staff to tell which address, not to write to it."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, noting whether the message body went out after the DATA command's
    354: a connection lost before that left nothing on the server; after it, the server may have
    taken the message. The DATA exchange's replies get `data_timeout` (`FINAL_REPLY_SECONDS`):
    servers that scan a message while taking it answer slowly (RFC 5321 §4.5.3.2.6 asks clients
    to wait minutes; `SEND_SECONDS` and the follow-up worker's 60 s claim bound us)."""

    body_sent = False
    data_timeout = 0.0

    async def data(
        self, message: str | bytes, /, *, timeout: float | Literal[Default.token] | None = Default.token
    ) -> SMTPResponse:
        protocol = self.protocol
        if protocol is None:
            return await super().data(message, timeout=timeout)
        write = protocol.write
        command_sent = False

        def noting(data: bytes) -> None:  # the first write after DATA's is the body
            nonlocal command_sent
            if command_sent:
                self.body_sent = True
            command_sent = command_sent or data == b"DATA\r\n"
            write(data)

        protocol.write = noting  # type: ignore[method-assign]
        try:
            return await super().data(message, timeout=max(self.timeout or 0.0, self.data_timeout))
        finally:
            protocol.write = write  # type: ignore[method-assign]


FINAL_REPLY_SECONDS: Final = 30.0
#: The whole send at most (each reply has its own timeout): within the follow-up worker's 60 s
#: claim on the message (`follow_ups.LEASE_SECONDS`), so no other pass takes it for cut off.
SEND_SECONDS: Final = 45.0

#: The timeline's reason when the server may have taken a message it never confirmed.
UNCONFIRMED: Final = "the mail server did not confirm the message; not sent again, so it cannot arrive twice"


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str
    message_id: str  # stable per follow-up: a resend after a crash is recognisable


class MailSender:
    def __init__(
        self,
        target: SmtpTarget,
        *,
        mail_from: str,
        timeout: float = 10.0,
        ca_file: str | None = None,
        data_timeout: float = FINAL_REPLY_SECONDS,
        display_name: str = "",
        bounce_address: str = "",
    ) -> None:
        self.target = target
        self.mail_from = mail_from
        # The envelope sender, where bounces go (VOC_MAIL_BOUNCE_ADDRESS); None: the From: address.
        self.bounce_address = bounce_address or None
        # The name a bare VOC_MAIL_FROM is shown by (VOC_BRAND_NAME): "voc@chain.example" alone
        # does not say whose mail it is, and a wary customer does not open it. Whitespace
        # collapsed: a newline from a secret file would fail every mail.
        self.display_name = " ".join(display_name.split())
        self.timeout = timeout
        self.data_timeout = data_timeout
        self._tls = ssl.create_default_context(cafile=ca_file) if ca_file else None
        if target.start_tls is None and not target.use_tls:
            # Opportunistic STARTTLS (RFC 7435, Postfix's "may"): encrypted when offered, the
            # certificate not checked, since plain was the alternative (a relay with a
            # self-signed certificate or addressed by IP sent before and must still). No
            # password goes this way (`clear_text_login`); ?starttls=1 or smtps:// verify.
            self._tls = ssl.create_default_context()
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE

    def build(self, mail: Mail) -> EmailMessage:
        """multipart/alternative: plain text first, then the HTML."""
        message = EmailMessage()
        name, address = parseaddr(self.mail_from)
        if address and "@" in address:
            message["From"] = Address(display_name=name or self.display_name, addr_spec=address)
        else:
            message["From"] = self.mail_from
        message["To"] = Address(addr_spec=mail.to)
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = f"<{mail.message_id}@{message_domain(self.mail_from)}>"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    async def send(self, mail: Mail) -> SendResult:
        if not valid_address(mail.to):
            return SendResult("failed", "invalid e-mail address")
        try:
            message = self.build(mail)
        except (ValueError, TypeError) as exc:  # the header registry refuses the address
            return SendResult("failed", f"invalid e-mail address ({type(exc).__name__})")
        client = _Client(**dataclasses.asdict(self.target), timeout=self.timeout, tls_context=self._tls)
        client.data_timeout = self.data_timeout
        try:
            async with asyncio.timeout(SEND_SECONDS), client:
                await client.send_message(message, sender=self.bounce_address)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            # A mailbox that does not exist fails for good; a refusal by policy (5.7.x, "relay
            # access denied") is our relay's setup or our login, fixed without losing the mail.
            permanent = all(r.code >= 500 and not _policy(r.message) for r in exc.recipients)
            undeliverable = all(hard_bounce(f"{r.code} {r.message}") for r in exc.recipients)
            return SendResult(
                "failed" if permanent else "retry",
                _reason("recipient refused", reason),
                undeliverable=permanent and undeliverable,
            )
        except aiosmtplib.SMTPSenderRefused as exc:
            # Our From: address or our account: a configuration problem, fixed without loss.
            return SendResult("retry", _reason("sender refused", f"{exc.code} {exc.message}"))
        except aiosmtplib.SMTPAuthenticationError as exc:
            return SendResult("retry", _reason("SMTP login refused", f"{exc.code} {exc.message}"))
        except aiosmtplib.SMTPDataError as exc:
            permanent = exc.code >= 500
            return SendResult(
                "failed" if permanent else "retry", _reason("message refused", f"{exc.code} {exc.message}")
            )
        except aiosmtplib.SMTPResponseException as exc:
            permanent = exc.code >= 500 and exc.code not in (502, 503, 504)
            return SendResult(
                "failed" if permanent else "retry", _reason("SMTP error", f"{exc.code} {exc.message}")
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if client.body_sent:
                return SendResult("failed", f"{UNCONFIRMED} ({type(exc).__name__})")
            return SendResult("retry", f"SMTP server unavailable ({type(exc).__name__})")
        return SendResult("sent", f"accepted by {self.target.hostname}")


def _policy(message: str) -> bool:
    """An enhanced status code of class 5.7 (security or policy, RFC 3463) leads the reply."""
    return message.lstrip().startswith(("5.7.", "4.7."))


def _reason(what: str, answer: str) -> str:
    """A server's answer as a timeline reason: one line, short, addresses and numbers masked."""
    return f"{what}: {server_said(answer, limit=160)}"


def message_domain(mail_from: str) -> str:
    """The domain of our Message-IDs: the From: address's (`VOC_MAIL_FROM`)."""
    return mail_from.rpartition("@")[2].strip(" >") or "localhost"
