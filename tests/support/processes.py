"""Stopping a CLI process the way a person does (Ctrl-C), and saying why when it does not stop.

Start it with `preexec_fn=sigint_default`: a suite started in the background of a shell
without job control (`make test &` in a script, or a runner that starts it so) runs with SIGINT
ignored, a child inherits that through exec, and Python then leaves it ignored, so the SIGINT
would never reach it. Also give it `FAULTHANDLER_ENV` and collect its stderr with its output:
a process that outlives its SIGINT is sent SIGABRT, so Python's faulthandler prints every
thread's stack there, and the failure shows that with the process's signal masks."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import pytest

FAULTHANDLER_ENV = {"PYTHONFAULTHANDLER": "1"}


def sigint_default() -> None:
    """In the child, before exec: SIGINT handled by default and not blocked, whatever the suite
    inherited (an ignored disposition and the signal mask both survive exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


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
