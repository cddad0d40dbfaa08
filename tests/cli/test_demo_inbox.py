"""`voc demo-inbox` (#19): a local SMTP mailbox that prints what it receives, run as the README
says, and a real SMTP client (aiosmtplib, notify's) sending it a multipart follow-up mail."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from tests.support.processes import FAULTHANDLER_ENV, interrupt, sigint_default
from voc_cli.supervisor import free_port
from voc_notify.channels.mail import Mail, MailSender, parse_smtp_url
from voc_notify.channels.texts import render


def test_demo_inbox_prints_the_follow_up_mail_it_receives() -> None:
    port = free_port()
    inbox = subprocess.Popen(
        [sys.executable, "-m", "voc_cli", "demo-inbox"],
        env={**os.environ, **FAULTHANDLER_ENV, "VOC_DEMO_INBOX_PORT": str(port)},
        preexec_fn=sigint_default,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(inbox.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("waiting for mail" in line for line in lines):
            assert inbox.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        assert f"VOC_SMTP_URL=smtp://127.0.0.1:{port}" in "".join(lines)
        url = "http://127.0.0.1:8010/f/abc.def"
        text = render(language="en", store_name="Busan Seomyeon", url=url)
        sender = MailSender(parse_smtp_url(f"smtp://127.0.0.1:{port}"), mail_from="voc@demo.local")
        mail = Mail(
            to="jane@example.com", subject=text.subject, text=text.text, html=text.html, message_id="t"
        )
        assert asyncio.run(sender.send(mail)).status == "sent"
        while not any(url in line for line in lines):
            assert inbox.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        printed = "".join(lines)
        assert "[inbox] mail to jane@example.com from voc@demo.local" in printed
        assert "Subject: [Busan Seomyeon] Thank you for your visit." in printed
    finally:
        code = interrupt(inbox, output=lines, reader=reader)
        assert code == 0, "".join(lines)


def test_demo_inbox_stops_on_sigterm_and_frees_its_port() -> None:
    """`kill` (SIGTERM) stops it as Ctrl-C does: exit 0, the SMTP port free again."""
    port = free_port()
    inbox = subprocess.Popen(
        [sys.executable, "-m", "voc_cli", "demo-inbox"],
        env={**os.environ, **FAULTHANDLER_ENV, "VOC_DEMO_INBOX_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(inbox.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("waiting for mail" in line for line in lines):
            assert inbox.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
    finally:
        code = interrupt(inbox, output=lines, reader=reader, signum=signal.SIGTERM)
    assert code == 0, "".join(lines)
    assert "Traceback" not in "".join(lines)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
