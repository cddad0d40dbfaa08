"""The benchmark's own instruments, against real servers on loopback: the load generator's
HTTP/1.1 client (a real FastAPI app under uvicorn, and raw servers for the awkward cases), and
the phones' push emulator in deferred-decryption mode (real Web Push from notify's sender)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn

from voc_bench import loadgen
from voc_bench.ceiling import app as bare_app
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import free_port
from voc_notify.webpush import DEFAULT_PUSH_HOSTS, PushAllowlist, PushSubscription, VapidKeys, WebPushSender


@pytest.fixture
async def bare_server() -> AsyncIterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(bare_app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await task


async def test_posts_reuse_at_most_the_pool_and_queue_beyond_it(bare_server: int) -> None:
    client = loadgen.Client("127.0.0.1", bare_server, connections=4)
    request = client.post(
        "/v1/feedback", b'{"text": "\xec\xb6\x94\xec\x9b\x8c\xec\x9a\x94"}', {"X-Test": "1"}
    )
    assert request.startswith(b"POST /v1/feedback HTTP/1.1\r\n")
    assert b"Content-Length: 21\r\n" in request  # octets, not characters
    try:
        answers = await asyncio.gather(*(client.send(request) for _ in range(50)))
        assert {(a.status, a.body) for a in answers} == {(202, b'{"id":"0","status":"received"}')}
        assert client._open == 4  # 50 requests, 4 connections: the rest waited for one
        bad = await client.send(client.post("/v1/feedback", b"{not json"))
        assert bad.status == 422 and json.loads(bad.body)["detail"]
    finally:
        await client.close()


async def _raw_server(handle: asyncio.StreamReaderCallback) -> tuple[asyncio.Server, int]:  # type: ignore[name-defined]
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_chunked_answers_and_servers_that_close_after_each_response() -> None:
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server, port = await _raw_server(handle)
    client = loadgen.Client("127.0.0.1", port, connections=2)
    try:
        for _ in range(3):
            answer = await client.send(client.post("/x", b"{}"))
            assert (answer.status, answer.body) == (201, b"abcde")
        assert connections == 3  # each closed connection was replaced, not reused
    finally:
        await client.close()
        server.close()


async def test_a_server_that_never_answers_times_out_and_frees_the_slot() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(5)

    server, port = await _raw_server(handle)
    client = loadgen.Client("127.0.0.1", port, connections=1, timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.send(client.post("/x", b"{}"))
        assert time.monotonic() - started < 1.0
        with pytest.raises(TimeoutError):  # the slot was freed: a new connection, same fate
            await client.send(client.post("/x", b"{}"))
        assert client._open == 0
    finally:
        await client.close()
        server.close()


async def test_a_refused_connection_is_an_error_and_frees_the_slot() -> None:
    client = loadgen.Client("127.0.0.1", free_port(), connections=1)
    with pytest.raises(OSError):
        await client.send(client.post("/x", b"{}"))
    assert client._open == 0


async def test_deferred_phones_stamp_arrival_and_decrypt_when_read() -> None:
    vapid = VapidKeys.generate()
    async with PushEmulator(defer_decryption=True) as emulator:
        good = PushSubscription.from_json(emulator.new_subscription("phone-1"))
        broken = emulator.new_subscription("phone-2")
        # Keys that are not the subscription's: the push service accepts it, the phone cannot
        # read it.
        other = emulator.new_subscription("elsewhere")
        broken["keys"] = other["keys"]
        sender = WebPushSender(
            vapid=vapid,
            subject="mailto:bench@frontline-voc.example",
            allowlist=PushAllowlist([*DEFAULT_PUSH_HOSTS, f"127.0.0.1:{emulator.port}"]),
        )
        try:
            sent_at = time.time()
            ok = await sender.send(good, '{"alert_id": "a-1", "title": "새 피드백"}'.encode(), ttl=60)
            unreadable = await sender.send(PushSubscription.from_json(broken), b'{"alert_id": "a-2"}', ttl=60)
        finally:
            await sender.aclose()
        assert ok.status == unreadable.status == "accepted"
        await asyncio.sleep(0.05)
        (push,) = emulator.received()  # decrypted now, stamped when it arrived
        assert push.label == "phone-1" and push.json == {"alert_id": "a-1", "title": "새 피드백"}
        assert sent_at <= push.received_at < time.time() - 0.04
        assert emulator.undecryptable == 1


def test_the_client_runs_on_uvloop_as_the_bench_does() -> None:
    import uvloop

    async def run() -> set[tuple[int, bytes]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(2)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()

        server, port = await _raw_server(handle)
        client = loadgen.Client("127.0.0.1", port, connections=3)
        try:
            answers = await asyncio.gather(*(client.send(client.post("/", b"{}")) for _ in range(20)))
            assert client._open == 3
            return {(a.status, a.body) for a in answers}
        finally:
            await client.close()
            server.close()

    assert uvloop.run(run()) == {(202, b"ok")}


async def test_a_cancelled_request_never_hands_its_late_answer_to_the_next() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            path = head.split(b" ")[1]
            await asyncio.sleep(0.2 if path == b"/slow" else 0)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
            await writer.drain()

    server, port = await _raw_server(handle)
    client = loadgen.Client("127.0.0.1", port, connections=1)
    try:
        slow = asyncio.ensure_future(client.send(client.post("/slow", b"{}")))
        await asyncio.sleep(0.05)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        answer = await client.send(client.post("/fast", b"{}"))
        assert (answer.status, answer.body) == (200, b"/fast")  # not the slow one's late answer
        await asyncio.sleep(0.3)
        assert (await client.send(client.post("/again", b"{}"))).body == b"/again"
    finally:
        await client.close()
        server.close()


async def test_a_garbled_answer_is_an_error_and_its_socket_is_closed() -> None:
    peer_gone = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)  # the body, "{}"
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()
        try:
            closed = await reader.read() == b""
        except ConnectionResetError:  # aborted: a reset rather than a FIN
            closed = True
        if closed:
            peer_gone.set()

    server, port = await _raw_server(handle)
    client = loadgen.Client("127.0.0.1", port, connections=1)
    try:
        with pytest.raises(ConnectionError, match="bad response"):
            await client.send(client.post("/x", b"{}"))
        await asyncio.wait_for(peer_gone.wait(), 2)
        assert client._open == 0
    finally:
        await client.close()
        server.close()


async def test_deferred_phones_wake_waiters_and_clear_forgets_unread_pushes() -> None:
    vapid = VapidKeys.generate()
    async with PushEmulator(defer_decryption=True) as emulator:
        sub = PushSubscription.from_json(emulator.new_subscription("phone"))
        sender = WebPushSender(
            vapid=vapid,
            subject="mailto:bench@frontline-voc.example",
            allowlist=PushAllowlist([*DEFAULT_PUSH_HOSTS, f"127.0.0.1:{emulator.port}"]),
        )
        try:
            waiting = asyncio.ensure_future(emulator.wait_for(lambda p: p.json == {"n": 1}, timeout=3))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            assert (await sender.send(sub, b'{"n": 1}', ttl=60)).status == "accepted"
            assert (await waiting).json == {"n": 1}
            assert time.monotonic() - started < 1.0  # woken by the arrival, not the timeout
            assert (await sender.send(sub, b'{"n": 2}', ttl=60)).status == "accepted"
            emulator.clear()  # the unread second push is forgotten too
            assert emulator.received() == [] and emulator.undecryptable == 0
        finally:
            await sender.aclose()


def test_metrics_overhead_benchmark_runs() -> None:
    from voc_bench import metrics_overhead

    stats = asyncio.run(metrics_overhead.run(calls=200, repeat=1))
    wanted = {"http_middleware_us", "service_app_delta_us", "grpc_observe_us", "event_consumed_us"}
    assert wanted <= set(stats)
    assert all(value == value and value < 1e6 for value in stats.values())  # numbers, not NaN


def test_masking_benchmark_reads_the_corpora_and_masks_its_contact_details() -> None:
    from voc_bench import masking

    texts = masking.review_texts(50)
    assert len(texts) == 50 and len(set(texts)) > 40  # taken in turn from several corpora
    heavy = masking.with_contact_details(texts[:3])
    assert all("5678" in text and "@example.com" in text for text in heavy)
    masked = [masking.mask_text(text, limit=10_000) for text in heavy]
    assert all("***5678" in text and "***@***" in text and "@example.com" not in text for text in masked)
    assert 0 < masking.microseconds_per_text(texts, repeat=1) < 1e6


def test_webhook_cost_benchmark_delivers_everything_it_enqueued() -> None:
    from voc_bench import webhook_cost

    ((deliveries, cpu, wall),) = asyncio.run(webhook_cost.run(events=10, repeat=1))
    assert deliveries == 20  # feedback.received and feedback.classified per event
    assert cpu > 0 and 0 < wall < 60  # returns only once nothing is pending
