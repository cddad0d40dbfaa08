"""Child processes of the CLI (nats-server, the services): stopped within a timeout, else killed."""

from __future__ import annotations

import subprocess
from typing import Any


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
