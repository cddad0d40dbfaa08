"""The cost of masking free text: ``python -m voc_bench.masking [--items N] [--repeat R]``.

`voc_platform.masking.mask_text` runs for every push payload, alert, event excerpt and webhook,
so its cost is paid several times per feedback. Times it over the committed review texts
(`data/classifier/*.jsonl.gz`, Korean and English, as real customers write: few hold an address
or a long number) and over texts that each hold a phone number and an e-mail address (the slow
path). Prints microseconds per text, best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Sequence
from pathlib import Path

from voc_platform.masking import mask_text

DATA = Path(__file__).resolve().parents[3] / "data" / "classifier"


def review_texts(limit: int) -> list[str]:
    """Up to `limit` texts, taken in turn from each committed corpus."""
    per_file = []
    for path in sorted(DATA.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            per_file.append([json.loads(line)["text"] for line, _ in zip(lines, range(limit), strict=False)])
    mixed = [text for group in zip(*per_file, strict=False) for text in group]
    return mixed[:limit]


def with_contact_details(texts: Sequence[str]) -> list[str]:
    """Each text with a mobile number and an e-mail address after it (the slow path)."""
    return [
        f"{text} 연락처 010-{1000 + i % 9000:04d}-5678, kim{i}@example.com" for i, text in enumerate(texts)
    ]


def microseconds_per_text(texts: Sequence[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            mask_text(text)
        best = min(best, time.perf_counter() - started)
    return best / len(texts) * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    texts = review_texts(args.items)
    print(f"review texts ({len(texts)}): {microseconds_per_text(texts, args.repeat):.2f} µs each")
    heavy = with_contact_details(texts)
    print(f"with a phone and an e-mail: {microseconds_per_text(heavy, args.repeat):.2f} µs each")


if __name__ == "__main__":
    main()
