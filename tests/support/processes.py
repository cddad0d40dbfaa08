"""Running a CLI command as a person does (`CliProcess`), stopping it the way they do (Ctrl-C,
or `kill`), and saying why when it does not stop.

`CliProcess` starts it through `SIGINT_DEFAULT_LAUNCHER`: a suite started in the background of a
shell without job control (`make test &` in a script, or a runner that starts it so) runs with
SIGINT ignored, a child inherits that through exec, and Python then leaves it ignored, so the
SIGINT would never reach it. The launcher is a Python of its own that sets SIGINT back and execs
`python -m voc_cli`; a `preexec_fn` did the same in the forked child, but running Python there
while the suite's gRPC threads run can hang the child before its exec (seen in CI: the child
printed gRPC's "epoll_wait error: Bad file descriptor" and nothing more).

It also gives it `FAULTHANDLER_ENV` and collects its stderr with its output: a process that
outlives its SIGINT is sent SIGABRT, so Python's faulthandler prints every thread's stack there,
and the failure shows that with the process's signal masks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

FAULTHANDLER_ENV = {"PYTHONFAULTHANDLER": "1"}


# SIGINT handled by default and not blocked, whatever the suite inherited (an ignored
# disposition and the signal mask both survive exec), then `python -m voc_cli <args>`.
SIGINT_DEFAULT_LAUNCHER = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'voc_cli', *sys.argv[1:]])\n"
)


def _signal_state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        return f"(no /proc status: {exc})"
    wanted = ("State", "SigQ", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return "; ".join(line for line in status.splitlines() if line.split(":")[0] in wanted)


def interrupt(
    proc: subprocess.Popen[str],
    *,
    output: list[str],
    reader: threading.Thread,
    timeout: float = 30,
    signum: signal.Signals = signal.SIGINT,
) -> int:
    """`signum` (Ctrl-C's SIGINT by default), then its exit code once `reader` (the thread
    filling `output`) has read the rest; fails the test with the process's state and stacks if
    it is still running after `timeout` seconds."""
    proc.send_signal(signum)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        state = _signal_state(proc.pid)
        proc.send_signal(signal.SIGABRT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=5)
        tail = "".join(output)[-6000:]
        pytest.fail(
            f"{proc.args!r} still ran {timeout:.0f} s after {signum.name}; {state}\n--- its output:\n{tail}"
        )
    reader.join(timeout=5)
    return code


class CliProcess:
    """`python -m voc_cli <args>` started as a person would run it (see the module notes),
    its output (stderr included) collected line by line as it comes."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIGINT_DEFAULT_LAUNCHER, *args],
            env={**env, **FAULTHANDLER_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.output.extend(self.proc.stdout or []), daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        self.output.extend(self.proc.stdout or [])

    @property
    def printed(self) -> str:
        return "".join(self.output)

    def wait_for(self, text: str, *, timeout: float = 30) -> None:
        """Until a line holds `text`; fails with the output if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.output):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.printed
            time.sleep(0.1)

    def stop(self, signum: signal.Signals = signal.SIGINT) -> int:
        """`interrupt` with `signum`: its exit code."""
        return interrupt(self.proc, output=self.output, reader=self._reader, signum=signum)


@contextlib.contextmanager
def service_process(module: str, data_dir: Path, **settings: str) -> Iterator[str]:
    """One service as its own process (`python -m voc_<name>`) on free ports, with `data_dir`,
    no NATS to reach (its REST API answers anyway), text logs and `settings` (VOC_* variables),
    until its `/healthz` answers: its URL, for the block; terminated after it."""
    from voc_cli.supervisor import free_port  # the CLI's, as the suite's other systems use

    name = module.removeprefix("voc_").upper()
    http = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update(
        {
            "VOC_DATA_DIR": str(data_dir),
            f"VOC_{name}_HTTP_PORT": str(http),
            f"VOC_{name}_GRPC_PORT": str(free_port()),
            "VOC_NATS_URL": f"nats://127.0.0.1:{free_port()}",
            "VOC_LOG_FORMAT": "text",
            **settings,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", module], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"{module} exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{module} did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
