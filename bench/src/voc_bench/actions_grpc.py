"""gRPC micro-benchmark: GetActionPlan with 500 playbooks loaded, over a real grpc.aio server on
loopback, called sequentially through the platform client channel (credential, deadline,
retry policy and trace interceptors included, as in production).

The server runs in its own process, started the way the service starts it: uvloop, the
platform's grpc.aio server (health, reflection, the credential and trace interceptor), the
library loaded, then ``gc.collect(); gc.freeze()``. This process is the caller, as notify is in
production: one long-lived platform client channel, 500 warm-up calls, then N sequential calls
timed one by one. CPU time is read from both processes (all threads), so the cost per call is
visible even when other work competes for the cores and the latencies are noisy.
``--in-process`` runs server and client on one event loop in this process instead (the
benchmark's earlier method, kept for comparison).

Run: ``uv run python -m voc_bench.actions_grpc [N_PLAYBOOKS] [N_CALLS] [--in-process]``;
target p99 < 2 ms.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

from voc.actions.v1 import actions_pb2_grpc
from voc_actions import grpc_server
from voc_actions.live import LiveLibrary
from voc_actions.playbooks import parse_playbooks
from voc_bench.playbook_workload import random_request, synthesize
from voc_platform import grpc as voc_grpc
from voc_platform import telemetry

TOKEN = "bench-internal-token"  # noqa: S105 - loopback only
WARMUP_CALLS = 500
SERVE_FLAG = "--serve"
IN_PROCESS_FLAG = "--in-process"

#: ``run_separate`` or ``run_in_process``: (playbooks, calls) -> results
Runner = Callable[[int, int], dict[str, float]]


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1]


def _run_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` on uvloop with the SDK tracer provider installed, as ServiceRuntime does
    (without the provider every span would be the API's free no-op and the bench would flatter)."""
    telemetry.setup("voc-bench-grpc")
    return uvloop.run(main)


async def _start_server(n_playbooks: int) -> tuple[Any, int, int]:
    """The production gRPC server with ``n_playbooks`` synthetic playbooks; (server, port, count)."""
    library = parse_playbooks(synthesize(n_playbooks), require_defaults=True)
    live = LiveLibrary(library=library, publication_id=1)
    server, _health, port = voc_grpc.create_server(
        port=0,
        host="127.0.0.1",
        token=TOKEN,
        register=grpc_server.register(live),
        service_names=[grpc_server.SERVICE_NAME],
    )
    await server.start()
    return server, port, len(library)


def serve(n_playbooks: int) -> None:
    """The server process: prints ``PORT PLAYBOOKS`` once serving, then answers every line on
    stdin with its CPU time (seconds, all threads); stops at the end of stdin."""

    async def main() -> None:
        server, port, count = await _start_server(n_playbooks)
        gc.collect()
        gc.freeze()  # as ServiceRuntime does after start
        loop = asyncio.get_running_loop()
        stdin_closed = asyncio.Event()

        def answer() -> None:
            for _line in sys.stdin:
                print(time.process_time(), flush=True)
            loop.call_soon_threadsafe(stdin_closed.set)

        threading.Thread(target=answer, name="bench-control", daemon=True).start()
        print(port, count, flush=True)
        await stdin_closed.wait()
        await server.stop(grace=None)

    _run_loop(main())


async def _measure(port: int, n_calls: int, server_cpu: Callable[[], float]) -> dict[str, float]:
    channel = voc_grpc.client_channel(f"127.0.0.1:{port}", token=TOKEN, timeout=2.0)
    stub = actions_pb2_grpc.ActionsServiceStub(channel)
    rng = random.Random(11)
    requests = [random_request(rng) for _ in range(WARMUP_CALLS + n_calls)]
    try:
        for req in requests[:WARMUP_CALLS]:
            await stub.GetActionPlan(req)
        latencies_ms: list[float] = []
        gc.collect()
        gc.freeze()  # as ServiceRuntime does after start
        # CPU time does not grow when other processes compete for the cores, so it shows the
        # cost per call even on a busy machine.
        client_started, server_started = time.process_time(), server_cpu()
        for req in requests[WARMUP_CALLS:]:
            started = time.perf_counter_ns()
            response = await stub.GetActionPlan(req)
            latencies_ms.append((time.perf_counter_ns() - started) / 1e6)
            assert response.plan.playbook_id
        client_cpu = time.process_time() - client_started
        server_cpu_used = server_cpu() - server_started
    finally:
        await channel.close()
    return {
        "calls": float(n_calls),
        "p50_ms": percentile(latencies_ms, 50),
        "p99_ms": percentile(latencies_ms, 99),
        "max_ms": max(latencies_ms),
        "client_cpu_ms_per_call": client_cpu * 1000 / n_calls,
        "server_cpu_ms_per_call": server_cpu_used * 1000 / n_calls,
    }


def run_separate(n_playbooks: int, n_calls: int) -> dict[str, float]:
    """Server in a child process (as in production), client here."""
    child = subprocess.Popen(  # noqa: S603 - this interpreter, this module
        [sys.executable, "-m", "voc_bench.actions_grpc", SERVE_FLAG, str(n_playbooks)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    stdin, stdout = child.stdin, child.stdout
    try:
        ready = stdout.readline().split()
        if len(ready) != 2:
            raise RuntimeError(f"benchmark server did not start (exit code {child.poll()})")
        port, count = int(ready[0]), int(ready[1])

        def server_cpu() -> float:
            stdin.write("cpu\n")
            stdin.flush()
            return float(stdout.readline())

        result = _run_loop(_measure(port, n_calls, server_cpu))
    finally:
        stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - the server ignored end of input
            child.kill()
            child.wait()
    return {"playbooks": float(count), **result}


def run_in_process(n_playbooks: int, n_calls: int) -> dict[str, float]:
    """Server and client on one event loop in this process; all CPU counts as the client's."""

    async def main() -> dict[str, float]:
        server, port, count = await _start_server(n_playbooks)
        try:
            result = await _measure(port, n_calls, lambda: 0.0)
        finally:
            await server.stop(grace=None)
        return {"playbooks": float(count), **result}

    result: dict[str, float] = _run_loop(main())
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == [SERVE_FLAG]:
        serve(int(argv[1]))
        return 0
    in_process = IN_PROCESS_FLAG in argv
    args = [a for a in argv if a != IN_PROCESS_FLAG]
    n_playbooks = int(args[0]) if args else 500
    n_calls = int(args[1]) if len(args) > 1 else 5000
    result = (run_in_process if in_process else run_separate)(n_playbooks, n_calls)
    layout = "client and server in one process" if in_process else "server in its own process"
    print(
        f"GetActionPlan over loopback gRPC: {result['playbooks']:.0f} playbooks, "
        f"{result['calls']:.0f} sequential calls, {layout}"
    )
    client, server = result["client_cpu_ms_per_call"], result["server_cpu_ms_per_call"]
    load = os.getloadavg()[0]
    print(
        f"cpu per call {client + server:.3f} ms (client {client:.3f} + server {server:.3f})   "
        f"load average {load:.2f} on {os.cpu_count()} cores"
    )
    print(
        f"p50 {result['p50_ms']:.3f} ms   p99 {result['p99_ms']:.3f} ms   max {result['max_ms']:.3f} ms"
        f"   (target p99 < 2 ms: {'met' if result['p99_ms'] < 2 else 'MISSED'})"
    )
    return 0 if result["p99_ms"] < 2 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
