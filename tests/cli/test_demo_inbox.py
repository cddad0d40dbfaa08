"""`voc demo-inbox` (#19): a local SMTP mailbox that prints what it receives, run as the README
says, and a real SMTP client (aiosmtplib, notify's) sending it a multipart follow-up mail."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import socket
from pathlib import Path

from tests.support.processes import CliProcess
from voc_cli.supervisor import free_port
from voc_notify.channels.mail import Mail, MailSender, parse_smtp_url
from voc_notify.channels.texts import render


def test_demo_inbox_prints_the_follow_up_mail_it_receives(tmp_path: Path) -> None:
    port = free_port()
    inbox = CliProcess(
        "demo-inbox", env={**os.environ, "VOC_DEMO_INBOX_PORT": str(port), "VOC_DATA_DIR": str(tmp_path)}
    )
    try:
        inbox.wait_for("waiting for mail")
        assert f"VOC_SMTP_URL=smtp://127.0.0.1:{port}" in inbox.printed
        url = "http://127.0.0.1:8010/f/abc.def"
        text = render(language="en", store_name="Busan Seomyeon", url=url)
        sender = MailSender(parse_smtp_url(f"smtp://127.0.0.1:{port}"), mail_from="voc@demo.local")
        mail = Mail(
            to="jane@example.com", subject=text.subject, text=text.text, html=text.html, message_id="t"
        )
        assert asyncio.run(sender.send(mail)).status == "sent"
        inbox.wait_for(url)
        assert "[inbox] mail to jane@example.com from voc@demo.local" in inbox.printed
        assert "Subject: [Busan Seomyeon] Thank you for your visit." in inbox.printed
        # Kept as it came, and its HTML part for a browser.
        inbox.wait_for("kept: ")
        (eml,) = (tmp_path / "inbox").glob("*.eml")
        (html,) = (tmp_path / "inbox").glob("*.html")
        assert f"(HTML: {html})" in inbox.printed and str(eml) in inbox.printed
        kept = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        assert kept["To"] == "jane@example.com" and kept.is_multipart()
        assert f'href="{url}"' in html.read_text(encoding="utf-8")
    finally:
        code = inbox.stop()
        assert code == 0, inbox.printed


def test_demo_inbox_stops_on_sigterm_and_frees_its_port() -> None:
    """`kill` (SIGTERM) stops it as Ctrl-C does: exit 0, the SMTP port free again."""
    port = free_port()
    inbox = CliProcess("demo-inbox", env={**os.environ, "VOC_DEMO_INBOX_PORT": str(port)})
    try:
        inbox.wait_for("waiting for mail")
    finally:
        code = inbox.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in inbox.printed, inbox.printed
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
