"""A progress bar for long command-line work (counts, percent, elapsed, rate), on stderr (#22).

The one implementation behind `voc customers|visits import`, `make bench` and `make train`: it
lives here because services (the trainer) may not import the `voc` tool, and every package may
import voc_platform.

On a terminal it redraws one line at most 10 times a second; otherwise (a log, CI) it prints a
line at every further 10 % so the output stays short. `finish` prints the final line either way.
A bar made with ``show=False`` writes nothing: `shown` turns ``--progress`` / ``--no-progress``
(or neither: only when stderr is a terminal) into that choice.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 24


def add_flag(parser: argparse.ArgumentParser) -> None:
    """``--progress`` forces the bar, ``--no-progress`` turns it off; neither: only on a terminal."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: only when stderr is a terminal)",
    )


def shown(choice: bool | None, stream: TextIO | None = None) -> bool:
    """Whether to draw: the flag when given, else whether `stream` (stderr) is a terminal."""
    if choice is not None:
        return choice
    return (stream or sys.stderr).isatty()


def clock(seconds: float) -> str:
    """Elapsed time, short: 4.2s, 1m05s."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None,
        unit: str,
        *,
        stream: TextIO | None = None,
        show: bool = True,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.show = show
        self.done = 0
        self._now = now
        self.started = now()
        self._tty = show and self.stream.isatty()
        self._drawn = float("-inf")
        self._decile = 0
        self._width = 0  # of the last line drawn on the terminal, to blank a longer one

    def line(self) -> str:
        elapsed = max(self._now() - self.started, 1e-6)
        tail = f"{clock(elapsed)}, {self.done / elapsed:,.0f} {self.unit}/s"
        if not self.total:
            return f"{self.label} {self.done:,} {self.unit}, {tail}"
        share = min(max(self.done / self.total, 0.0), 1.0)
        filled = int(share * WIDTH)
        bar = "#" * filled + "." * (WIDTH - filled)
        return f"{self.label} [{bar}] {share:4.0%} {self.done:,}/{self.total:,} {self.unit}, {tail}"

    def advance(self, n: int) -> None:
        self.update(self.done + n)

    def update(self, done: int) -> None:
        """Set the count (for work that is tallied rather than counted one by one)."""
        self.done = done
        if not self.show:
            return
        if self._tty:
            now = self._now()
            if now - self._drawn >= 0.1:
                self._drawn = now
                self._draw("\r", "")
        elif self.total:
            decile = int(10 * min(self.done / self.total, 1.0))
            if decile > self._decile and decile < 10:
                self._decile = decile
                print(self.line(), file=self.stream, flush=True)

    def finish(self, note: str = "") -> None:
        if self.show:
            self._draw("\r" if self._tty else "", f"; {note}" if note else "", end="\n")

    def _draw(self, prefix: str, note: str, end: str = "") -> None:
        text = self.line() + note
        padded = text.ljust(self._width) if self._tty else text
        self._width = len(text)
        self.stream.write(prefix + padded + end)
        self.stream.flush()
