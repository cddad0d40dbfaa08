"""The one progress bar (#22) of the imports, `make bench` and `make train`: what it draws, and
that it stays silent off a terminal unless forced. A fake clock, so no test here is timed."""

from __future__ import annotations

import argparse
import io

import pytest

from voc_platform.progress import Progress, add_flag, clock, shown


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_line_has_counts_percent_elapsed_and_rate() -> None:
    t = Clock()
    bar = Progress("[bench] sweep 100/s: sent", 1000, "feedback", stream=io.StringIO(), now=t)
    t.t += 4.0
    bar.update(400)
    assert bar.line() == (
        f"[bench] sweep 100/s: sent [{'#' * 9}{'.' * 15}]  40% 400/1,000 feedback, 4.0s, 100 feedback/s"
    )
    t.t += 80.0
    bar.update(1000)
    assert bar.line().endswith(f"[{'#' * 24}] 100% 1,000/1,000 feedback, 1m24s, 12 feedback/s")
    # More than planned (a CSV header subtracted late) never draws past the end.
    bar.update(1200)
    assert f"[{'#' * 24}] 100% 1,200/1,000" in bar.line()


def test_without_a_total_the_line_counts_only() -> None:
    t = Clock()
    bar = Progress("sentiment: epoch 2/4", None, "rows", stream=io.StringIO(), now=t)
    t.t += 2.0
    bar.advance(12_345)
    assert bar.line() == "sentiment: epoch 2/4 12,345 rows, 2.0s, 6,172 rows/s"


def test_terminal_redraws_one_line_at_most_ten_times_a_second_and_finishes_it() -> None:
    t, out = Clock(), Terminal()
    bar = Progress("train", 100, "rows", stream=out, now=t)
    t.t += 1.0
    bar.advance(10)  # drawn
    bar.advance(10)  # same instant: not drawn again
    t.t += 0.5
    bar.advance(30)  # drawn
    bar.finish("done")
    frames = out.getvalue().split("\r")[1:]
    assert [f.split(" [")[0] for f in frames] == ["train"] * 3
    assert "10/100 rows" in frames[0] and "50/100 rows" in frames[1]
    assert frames[2].endswith("50/100 rows, 1.5s, 33 rows/s; done\n")
    assert "\n" not in "".join(frames[:2])


def test_a_shorter_redraw_blanks_the_rest_of_the_longer_line() -> None:
    t, out = Clock(), Terminal()
    bar = Progress("x", 10, "rows", stream=out, now=t)
    t.t += 0.001
    bar.advance(10)  # a huge rate: a long line
    t.t += 100.0
    bar.finish()
    first, second = out.getvalue().split("\r")[1:]
    assert len(second.rstrip("\n")) >= len(first)


def test_off_a_terminal_a_forced_bar_prints_a_line_per_tenth_and_the_last() -> None:
    t, out = Clock(), io.StringIO()
    bar = Progress("customers: sent", 100, "rows", stream=out, now=t)
    for _ in range(100):
        t.t += 0.01
        bar.advance(1)
    bar.finish("the report follows")
    lines = out.getvalue().splitlines()
    assert [line.split("] ")[1].split("%")[0].strip() for line in lines] == [
        str(p) for p in range(10, 101, 10)
    ]
    assert lines[-1].endswith("100/100 rows, 1.0s, 100 rows/s; the report follows")


@pytest.mark.parametrize(
    ("choice", "stream", "expected"),
    [
        (None, io.StringIO(), False),  # a log or CI: silent
        (None, Terminal(), True),
        (True, io.StringIO(), True),  # --progress
        (False, Terminal(), False),  # --no-progress
    ],
)
def test_shown_follows_the_flag_else_the_terminal(
    choice: bool | None, stream: io.StringIO, expected: bool
) -> None:
    assert shown(choice, stream) is expected


def test_a_bar_not_shown_writes_nothing_even_on_a_terminal() -> None:
    for out in (io.StringIO(), Terminal()):
        bar = Progress("train", 10, "rows", stream=out, show=shown(None, io.StringIO()))
        bar.advance(5)
        bar.update(10)
        bar.finish("done")
        assert out.getvalue() == ""
        assert bar.done == 10


def test_the_flag_is_progress_no_progress_or_neither() -> None:
    parser = argparse.ArgumentParser()
    add_flag(parser)
    assert parser.parse_args([]).progress is None
    assert parser.parse_args(["--progress"]).progress is True
    assert parser.parse_args(["--no-progress"]).progress is False


def test_clock() -> None:
    assert (clock(0.04), clock(59.94), clock(60.0), clock(754.2)) == ("0.0s", "59.9s", "1m00s", "12m34s")
