"""A progress bar for long CLI work (counts, percent, rate), on stderr.

On a terminal it redraws one line at most 10 times a second; otherwise (a log, CI) it prints a
line at every further 10 % so the output stays short. `finish` prints the final line either way.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24


class Progress:
    def __init__(self, label: str, total: int | None, unit: str, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._tty = self.stream.isatty()
        self._drawn = 0.0
        self._decile = 0

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = f"{self.done / elapsed:,.0f} {self.unit}/s"
        if not self.total:
            return f"{self.label} {self.done:,} {self.unit}, {rate}"
        share = min(self.done / self.total, 1.0)
        filled = int(share * WIDTH)
        bar = "#" * filled + "." * (WIDTH - filled)
        return f"{self.label} [{bar}] {share:4.0%} {self.done:,}/{self.total:,} {self.unit}, {rate}"

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self._tty:
            if now - self._drawn >= 0.1:
                self._drawn = now
                self.stream.write("\r" + self.line())
                self.stream.flush()
        elif self.total:
            decile = int(10 * min(self.done / self.total, 1.0))
            if decile > self._decile and decile < 10:
                self._decile = decile
                print(self.line(), file=self.stream, flush=True)

    def finish(self, note: str = "") -> None:
        end = f"; {note}" if note else ""
        prefix = "\r" if self._tty else ""
        print(prefix + self.line() + end, file=self.stream, flush=True)
