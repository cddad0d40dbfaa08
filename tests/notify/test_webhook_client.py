"""The webhook HTTP/1.1 client (`webhooks.client`, #19) against scripted servers on loopback:
what it sends, which answers it reads and how, when it keeps or drops a connection, TLS.
The dispatcher's use of it against a real receiver: test_webhooks.py."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import certifi
import pytest
from yarl import URL

from tests.support.certs import make_certs
from tests.support.resolvers import LoopbackResolver
from voc_notify.webhooks.client import DRAIN_LIMIT, HEAD_LIMIT, ProtocolError, WebhookClient
from voc_notify.webhooks.sender import WebhookSender
from voc_notify.webhooks.targets import WebhookTargets

Answerer = Callable[[int, bytes], bytes | None]  # (request number, request) -> answer, None: hang
DROP = b""  # an answer that closes the connection without a byte


@dataclass
class Scripted:
    """A server answering each request with `answer(n, request)`; it counts connections and
    keeps the requests it read (head and body)."""

    answer: Answerer
    close_after_answer: bool = False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                self.arrived.set()
                answer = self.answer(len(self.requests), request)
                if answer is None:
                    await asyncio.sleep(30)
                    return
                if answer == DROP:
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer or b"\r\nConnection: close\r\n" in answer:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@asynccontextmanager
async def scripted(
    answer: Answerer, *, tls: ssl.SSLContext | None = None, **more: bool
) -> AsyncIterator[Scripted]:
    server = Scripted(answer, **more)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()


def client(**more: object) -> WebhookClient:
    return WebhookClient(resolver=LoopbackResolver(), ssl_context=ssl.create_default_context(), **more)  # type: ignore[arg-type]


def ok(body: bytes = b"", *, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def test_a_post_is_sent_as_asked_and_its_connection_is_used_again() -> None:
    async with scripted(lambda n, _: ok(b'{"n":%d}' % n)) as server:
        http = client()
        url = URL(f"http://hooks.test:{server.port}/in/bound?key=a%20b")
        first = await http.post(url, body=b'{"x":1}', headers={"webhook-id": "msg_1"}, kept=300, timeout=5)
        second = await http.post(url, body=b'{"x":2}', headers={"webhook-id": "msg_2"}, kept=300, timeout=5)
        http.close()
    assert (first.status, first.head, second.head) == (200, b'{"n":1}', b'{"n":2}')
    assert server.connections == 1
    head, body = server.requests[0].split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /in/bound?key=a%20b HTTP/1.1"
    assert f"Host: hooks.test:{server.port}".encode() in lines
    assert b"webhook-id: msg_1" in lines and b"Content-Length: 7" in lines
    assert body == b'{"x":1}'


async def test_a_kept_connection_the_server_dropped_unanswered_is_replaced_once() -> None:
    async with scripted(lambda n, _: DROP if n == 2 else ok(b"%d" % n)) as server:
        http = client()
        url = URL(f"http://hooks.test:{server.port}/")
        first = await http.post(url, body=b'{"n":1}', headers={}, kept=300, timeout=5)
        second = await http.post(url, body=b'{"n":2}', headers={}, kept=300, timeout=5)
        http.close()
    assert (first.head, second.head) == (b"1", b"3")
    # The second request went on the kept connection, heard nothing, and went again on a new one.
    assert server.connections == 2 and server.requests[1] == server.requests[2]


async def test_a_broken_answer_on_a_kept_connection_is_not_sent_again() -> None:
    async with scripted(
        lambda n, _: (
            ok() if n == 1 else b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\nshort"
        )
    ) as server:
        http = client()
        url = URL(f"http://hooks.test:{server.port}/")
        await http.post(url, body=b"{}", headers={}, kept=300, timeout=5)
        with pytest.raises(ProtocolError, match="inside the answer"):
            await http.post(url, body=b"{}", headers={}, kept=300, timeout=5)
        http.close()
    assert len(server.requests) == 2  # the receiver may have acted on it: no second copy now


async def test_answers_of_every_shape_are_read() -> None:
    chunked = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"a" * 200, b"b" * 200)) + b"0\r\n\r\n"
    answers = {
        1: b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(b"after hints"),
        2: chunked,  # longer than kept: the head is its first 300 bytes
        3: b"HTTP/1.1 204 No Content\r\n\r\n",
        4: b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nno length, ends with the connection",
    }
    async with scripted(lambda n, _: answers[n]) as server:
        http = client()
        url = URL(f"http://hooks.test:{server.port}/")
        got = [await http.post(url, body=b"{}", headers={}, kept=300, timeout=5) for _ in range(4)]
        http.close()
    assert [(a.status, len(a.head)) for a in got] == [(200, 11), (202, 300), (204, 0), (503, 35)]
    assert got[1].head == b"a" * 200 + b"b" * 100
    assert server.connections == 1  # the first three kept it; the fourth closed it


async def test_a_long_answer_is_not_drained_past_the_limit() -> None:
    huge = ok(b"x" * (DRAIN_LIMIT * 4))
    async with scripted(lambda n, _: huge if n == 1 else ok(b"short")) as server:
        http = client()
        url = URL(f"http://hooks.test:{server.port}/")
        first = await http.post(url, body=b"{}", headers={}, kept=300, timeout=5)
        second = await http.post(url, body=b"{}", headers={}, kept=300, timeout=5)
        http.close()
    assert (first.status, first.head) == (200, b"x" * 300) and second.head == b"short"
    assert server.connections == 2  # the long one's connection was closed, not read to the end


async def test_what_is_not_http_fails_as_a_network_error() -> None:
    async with scripted(lambda n, _: b"SSH-2.0-OpenSSH_9.2\r\n" * 4) as server:
        http = client()
        with pytest.raises(ProtocolError):
            await http.post(
                URL(f"http://hooks.test:{server.port}/"), body=b"{}", headers={}, kept=300, timeout=5
            )
        http.close()


async def test_endless_headers_are_refused_at_the_limit_not_read_until_the_timeout() -> None:
    """A receiver that streams one header forever: refused once the head passes 16 KiB (it was
    parsed on until the 5 s timeout, its value copied again with every read)."""
    endless = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * (HEAD_LIMIT * 8)
    within = ok(b"fine", extra=b"X-Padding: " + b"a" * (HEAD_LIMIT // 2) + b"\r\n")
    async with scripted(lambda n, _: endless if n == 1 else within) as server:
        http = client()
        url = URL(f"http://hooks.test:{server.port}/")
        started = time.monotonic()
        with pytest.raises(ProtocolError, match="headers exceed 16 KiB"):
            await http.post(url, body=b"{}", headers={}, kept=300, timeout=5)
        assert time.monotonic() - started < 2
        answer = await http.post(url, body=b"{}", headers={}, kept=300, timeout=5)
        http.close()
    assert (answer.status, answer.head) == (200, b"fine")


async def test_a_timed_out_exchange_never_lends_its_connection_again() -> None:
    async with scripted(lambda n, _: None if n == 1 else ok()) as server:
        sender = WebhookSender(WebhookTargets(["127.0.0.1:*"]), timeout=0.5)
        url = f"http://127.0.0.1:{server.port}/"
        hung = await sender.send(url, body=b"{}", headers={})
        after = await sender.send(url, body=b"{}", headers={})
        await sender.aclose()
    assert (hung.status_code, hung.error) == (None, "timeout")
    assert after.ok and server.connections == 2


async def test_idle_connections_are_capped() -> None:
    async with scripted(lambda n, _: ok()) as one, scripted(lambda n, _: ok()) as two:
        http = client(max_idle=1)
        for server in (one, two, two, one):
            await http.post(
                URL(f"http://hooks.test:{server.port}/"), body=b"{}", headers={}, kept=0, timeout=5
            )
        http.close()
    # One idle connection at most: the one idle longest is closed to make room.
    assert (one.connections, two.connections) == (2, 1)


def test_a_header_cannot_carry_a_line_break() -> None:
    async def post() -> None:
        await client().post(
            URL("http://hooks.test:1/"), body=b"", headers={"x": "a\r\nInjected: 1"}, kept=0, timeout=5
        )

    with pytest.raises(ValueError, match="line break"):
        asyncio.run(post())


def _tls(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for hooks.test (a private CA's, deploy/tls/make_certs.py) and a client
    context trusting that CA."""
    authority = make_certs().Authority()
    directory = authority.write(tmp / "hooks", authority.issue("hooks", ["hooks.test"]))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    return server, ssl.create_default_context(cafile=str(directory / "ca.crt"))


async def test_https_verifies_the_receivers_certificate(tmp_path: Path) -> None:
    server_tls, trusting = _tls(tmp_path)
    async with scripted(lambda n, _: ok(b"secure"), tls=server_tls) as server:
        url = URL(f"https://hooks.test:{server.port}/")
        http = WebhookClient(resolver=LoopbackResolver(), ssl_context=trusting)
        assert (await http.post(url, body=b"{}", headers={}, kept=300, timeout=5)).head == b"secure"
        http.close()
        public_roots = WebhookClient(
            resolver=LoopbackResolver(), ssl_context=ssl.create_default_context(cafile=certifi.where())
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            await public_roots.post(url, body=b"{}", headers={}, kept=300, timeout=5)
        public_roots.close()
    assert len(server.requests) == 1  # nothing was sent to the server it could not verify


async def test_the_deadline_covers_connecting_and_the_answer() -> None:
    # A TLS handshake nobody answers (a plain server that reads and says nothing), then an
    # answer that never comes: both end at the deadline.
    async with scripted(lambda n, _: None) as silent:
        http = client()
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await http.post(
                URL(f"https://hooks.test:{silent.port}/"), body=b"{}", headers={}, kept=0, timeout=0.3
            )
        with pytest.raises(TimeoutError):
            await http.post(
                URL(f"http://hooks.test:{silent.port}/"), body=b"{}", headers={}, kept=0, timeout=0.3
            )
        elapsed = asyncio.get_running_loop().time() - started
        http.close()
    assert 0.6 <= elapsed < 2.0 and silent.connections == 2


async def test_a_cancelled_exchange_never_lends_its_connection_again() -> None:
    async with scripted(lambda n, _: None if n == 1 else ok()) as server:
        http = client()
        url = URL(f"http://hooks.test:{server.port}/")
        hung = asyncio.create_task(http.post(url, body=b"{}", headers={}, kept=0, timeout=30))
        await asyncio.wait_for(server.arrived.wait(), 5)
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        assert (await http.post(url, body=b"{}", headers={}, kept=0, timeout=5)).status == 200
        http.close()
    assert server.connections == 2


async def test_every_new_connection_asks_the_public_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that passed registration and now resolves to loopback (DNS rebinding): no
    connection, whatever the machine's resolver says."""
    import voc_notify.webhooks.targets as targets

    monkeypatch.setattr(targets, "ThreadedResolver", LoopbackResolver)
    async with scripted(lambda n, _: ok()) as server:
        sender = WebhookSender(WebhookTargets(()), timeout=2)
        attempt = await sender.send(f"https://hooks.example.com:{server.port}/", body=b"{}", headers={})
        await sender.aclose()
    assert (attempt.status_code, attempt.error) == (None, "non-public address refused")
    assert server.connections == 0
