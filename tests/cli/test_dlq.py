"""`voc dlq list | show | replay | discard` over the dead-letter stream the platform writes
(#22 §2): a real nats-server, dead letters made by the real consumer (`Bus.consume` gives up
after max_deliver), the real `voc` command as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from voc.events.v1 import events_pb2
from voc_cli.nats import NatsServer
from voc_platform.bus import DLQ_STREAM, EVENTS_STREAM, Bus, ConsumerSpec

#: The events stream's duplicate window, shortened from 120 s so that the test can wait it out.
WINDOW = 15.0


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path_factory.mktemp("dlq-nats"), port=0, name="voc-dlq-test")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def bus(nats: NatsServer) -> AsyncIterator[Bus]:
    b = Bus(nats.url, name="dlq-test")
    await b.connect()
    await b.ensure_streams()
    assert b.js is not None
    config = (await b.js.stream_info(EVENTS_STREAM)).config
    config.duplicate_window = WINDOW
    await b.js.update_stream(config)
    yield b
    await b.stop_consumers()
    await b.close()


def voc(nats: NatsServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_NATS_URL": nats.url, "VOC_DATA_DIR": str(tmp_path)})
    return subprocess.run(
        [sys.executable, "-m", "voc_cli", "dlq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


async def wait_until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def letters(nats: NatsServer, tmp_path: Path) -> list[dict[str, object]]:
    done = await asyncio.to_thread(voc, nats, tmp_path, "list", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


async def test_list_show_replay_and_discard_dead_letters(bus: Bus, nats: NatsServer, tmp_path: Path) -> None:
    subject = f"voc.feedback.linked_test_{uuid.uuid4().hex[:6]}"
    durable = f"dlq-test-{uuid.uuid4().hex[:6]}"
    broken = True
    handled: list[Msg] = []

    async def handler(msg: Msg) -> None:
        if broken:
            raise ValueError("customer store unavailable")
        handled.append(msg)

    await bus.consume(
        ConsumerSpec(durable=durable, subjects=[subject], handler=handler, max_deliver=2, backoff=(0.05,))
    )
    event_id = str(uuid.uuid4())
    payload = events_pb2.FeedbackLinked(feedback_id="fb-1", customer_id="cust-1").SerializeToString()
    headers = {
        "Voc-Event-Type": "voc.events.v1.FeedbackLinked",
        "traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01",
    }
    await bus.publish(subject, payload, headers=headers, msg_id=event_id)
    published = time.monotonic()

    mine: list[dict[str, object]] = []

    async def dead() -> bool:
        mine[:] = [x for x in await letters(nats, tmp_path) if x["subject"] == subject]
        return bool(mine)

    deadline = time.monotonic() + 15
    while not await dead():
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.1)
    (letter,) = mine
    assert letter["consumer"] == durable and letter["event_id"] == event_id
    assert "customer store unavailable" in str(letter["reason"])
    letter_id = str(letter["id"])

    # Within the stream's duplicate window JetStream drops a republished event id: the replay
    # says so and keeps the dead letter (rather than deleting what was not delivered).
    early = await asyncio.to_thread(voc, nats, tmp_path, "replay", letter_id, "--yes")
    assert time.monotonic() - published < WINDOW, "too slow to check the duplicate window"
    assert early.returncode == 1 and f"kept {letter_id}" in early.stdout, early.stdout + early.stderr
    assert [x["id"] for x in await letters(nats, tmp_path) if x["subject"] == subject] == [letter["id"]]

    shown = await asyncio.to_thread(voc, nats, tmp_path, "show", letter_id)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["event"] == {"feedback_id": "fb-1", "customer_id": "cust-1"}
    assert detail["headers"]["Voc-Dead-Letter-Consumer"] == durable

    unknown = await asyncio.to_thread(voc, nats, tmp_path, "replay", "999999", "--yes")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        f"no dead letter 999999 in {DLQ_STREAM} (`voc dlq list` shows them)"
    ]

    dry = await asyncio.to_thread(voc, nats, tmp_path, "replay", letter_id, "--dry-run")
    assert dry.returncode == 0 and f"would replay {letter_id} -> {subject}" in dry.stdout
    unconfirmed = await asyncio.to_thread(voc, nats, tmp_path, "replay", letter_id)  # stdin: no terminal
    assert unconfirmed.returncode == 1 and "nothing changed" in unconfirmed.stdout
    assert "--yes" in unconfirmed.stderr
    assert len([x for x in await letters(nats, tmp_path) if x["subject"] == subject]) == 1

    # The cause is fixed; past the window the replay reaches the consumer with the event's
    # own id and headers (not the dead-letter ones), and the dead letter is gone.
    broken = False
    await asyncio.sleep(max(0.0, WINDOW + 0.5 - (time.monotonic() - published)))
    replayed = await asyncio.to_thread(voc, nats, tmp_path, "replay", letter_id, "--yes")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replayed 1 dead letter(s)" in replayed.stdout
    await wait_until(lambda: handled)
    (msg,) = handled
    assert msg.data == payload and msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == event_id and msg.headers["traceparent"] == headers["traceparent"]
    assert not any(h.startswith("Voc-Dead-Letter") for h in msg.headers)
    assert [x for x in await letters(nats, tmp_path) if x["subject"] == subject] == []

    # Discard: a second poison event, dead-lettered and then dropped for good.
    broken = True
    await bus.publish(subject, payload, headers=headers, msg_id=str(uuid.uuid4()))
    deadline = time.monotonic() + 15
    while not await dead():
        assert time.monotonic() < deadline, "no second dead letter"
        await asyncio.sleep(0.1)
    dropped = await asyncio.to_thread(voc, nats, tmp_path, "discard", str(mine[0]["id"]), "--yes")
    assert dropped.returncode == 0 and "discarded 1 dead letter(s)" in dropped.stdout, dropped.stdout
    assert [x for x in await letters(nats, tmp_path) if x["subject"] == subject] == []
    assert len(handled) == 1


@pytest.mark.parametrize("command", [["status"], ["dlq", "list"]])
def test_a_command_says_nats_does_not_answer_and_exits_1(command: list[str], tmp_path: Path) -> None:
    """Nothing listens on the port: one try, one line, exit 1 (nats-py's own reconnect loop ran
    for ever and printed a traceback per try)."""
    from voc_cli.supervisor import free_port

    env = {**os.environ, "VOC_NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    done = subprocess.run(
        [sys.executable, "-m", "voc_cli", "--data-dir", str(tmp_path), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    said = done.stdout + done.stderr
    assert "NOT REACHABLE" in said or "cannot reach NATS" in said, said
