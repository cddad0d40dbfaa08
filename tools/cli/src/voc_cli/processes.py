"""Child processes of the CLI (nats-server, the services): stopped within a timeout, else
killed; and the CLI's own long-running commands, stopped by SIGTERM as by Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
from types import FrameType
from typing import Any


def interrupt_on_sigterm() -> None:
    """From now on SIGTERM (`kill`, a service manager, a terminal closing a job) raises
    KeyboardInterrupt, as Ctrl-C does, so a command's cleanup (`finally`) runs either way."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def wait_or_kill(process: subprocess.Popen[Any], timeout: float) -> None:
    """Wait up to `timeout` seconds for the process to exit (after a SIGTERM), then kill it."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill(process)


def kill(process: subprocess.Popen[Any]) -> None:
    """SIGKILL, and reap it."""
    process.kill()
    process.wait()
