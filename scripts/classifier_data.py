"""Derive the compact classifier training / held-out extracts in data/classifier/ (issue #17).

Not run by ``make train``: it needs local snapshots of the public source repositories (see
docs/CLASSIFIER.md for repository, commit, path and licence of each). Re-running it with the same
snapshots and the same authored files reproduces the committed extracts byte for byte.

    python scripts/classifier_data.py --mirror /path/to/mirrors --authored /path/to/authored

Each output row is ``{"text", "sentiment", "category", "source", "split"}``; ``category`` is null
where the source has no category label; ``split`` is "train" or "heldout".
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

SEED = 17
OUT = Path(__file__).resolve().parents[1] / "data" / "classifier"
SOURCES = {
    "nsmc": ("e9t+nsmc", "cc0670e872d4ac27bfe36c87456783004b39ef6c"),
    "kote": ("searle-j+KOTE", "cafd2c3f54a6f4b25ac74eaa02a2e76c3ef8c977"),
    "vader": ("cjhutto+vaderSentiment", "44fc044cd877310ee8278a0eadf34bcd50d41d06"),
    "mams": ("siat-nlp+MAMS-for-ABSA", "cddcdb0f423b3fdb2c76b70744737abed3a00d17"),
}

# KOTE's 44 emotion ids (README order) grouped by valence; 24 = "없음" (none).
KOTE_NAMES = [
    "불평/불만",
    "환영/호의",
    "감동/감탄",
    "지긋지긋",
    "고마움",
    "슬픔",
    "화남/분노",
    "존경",
    "기대감",
    "우쭐댐/무시함",
    "안타까움/실망",
    "비장함",
    "의심/불신",
    "뿌듯함",
    "편안/쾌적",
    "신기함/관심",
    "아껴주는",
    "부끄러움",
    "공포/무서움",
    "절망",
    "한심함",
    "역겨움/징그러움",
    "짜증",
    "어이없음",
    "없음",
    "패배/자기혐오",
    "귀찮음",
    "힘듦/지침",
    "즐거움/신남",
    "깨달음",
    "죄책감",
    "증오/혐오",
    "흐뭇함(귀여움/예쁨)",
    "당황/난처",
    "경악",
    "부담/안_내킴",
    "서러움",
    "재미없음",
    "불쌍함/연민",
    "놀람",
    "행복",
    "불안/걱정",
    "기쁨",
    "안심/신뢰",
]
KOTE_POSITIVE = {
    "환영/호의", "감동/감탄", "고마움", "존경", "기대감", "뿌듯함", "편안/쾌적", "아껴주는",
    "즐거움/신남", "흐뭇함(귀여움/예쁨)", "행복", "기쁨", "안심/신뢰",
}  # fmt: skip
KOTE_NEGATIVE = {
    "불평/불만", "지긋지긋", "슬픔", "화남/분노", "우쭐댐/무시함", "안타까움/실망", "의심/불신",
    "공포/무서움", "절망", "한심함", "역겨움/징그러움", "짜증", "어이없음", "패배/자기혐오", "귀찮음",
    "힘듦/지침", "증오/혐오", "경악", "부담/안_내킴", "서러움", "재미없음", "불안/걱정",
}  # fmt: skip

# MAMS-ACSA aspect categories -> the shared taxonomy.
MAMS_CATEGORY = {
    "food": "food_quality",
    "menu": "food_quality",
    "staff": "staff_attitude",
    "service": "staff_attitude",
    "price": "price_value",
    "ambience": "facility",
    "place": "facility",
    "miscellaneous": "other",
}


def git_show(mirror: Path, name: str, path: str) -> bytes:
    repo, commit = SOURCES[name]
    base = mirror / repo / "repo"
    git_dir = base / ".git" if (base / ".git").is_dir() else base
    return subprocess.run(  # noqa: S603
        ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"],  # noqa: S607
        check=True,
        capture_output=True,
    ).stdout


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def row(text: str, sentiment: str, category: str | None, source: str, split: str) -> dict[str, object]:
    return {
        "text": clean(text),
        "sentiment": sentiment,
        "category": category,
        "source": source,
        "split": split,
    }


def nsmc(mirror: Path) -> list[dict[str, object]]:
    """Naver movie reviews with their 1-10 rating: <=3 negative, 5-6 neutral, >=9 positive."""
    repo, commit = SOURCES["nsmc"]
    base = mirror / repo / "repo"
    git_dir = base / ".git" if (base / ".git").is_dir() else base
    listing = subprocess.run(  # noqa: S603
        ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only", commit, "raw/"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    batch = subprocess.run(  # noqa: S603
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],  # noqa: S607
        input="".join(f"{commit}:{p}\n" for p in sorted(listing)).encode(),
        check=True,
        capture_output=True,
    ).stdout
    buckets: dict[str, list[str]] = {"negative": [], "neutral": [], "positive": []}
    pos = 0
    while pos < len(batch):
        header_end = batch.index(b"\n", pos)
        size = int(batch[pos:header_end].split()[2])
        body = batch[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
        for review in json.loads(body):
            text, rating = clean(review.get("review", "")), int(review.get("rating") or 0)
            if not 4 <= len(text) <= 200:
                continue
            label = "negative" if 1 <= rating <= 3 else "neutral" if rating in (5, 6) else None
            label = "positive" if rating >= 9 else label
            if label:
                buckets[label].append(text)
    rng = random.Random(SEED)
    out: list[dict[str, object]] = []
    for label, want in (("negative", 12000), ("neutral", 3000), ("positive", 12000)):
        texts = sorted(set(buckets[label]))
        rng.shuffle(texts)
        out.extend(row(t, label, None, "nsmc", "train") for t in texts[:want])
    return out


def kote(mirror: Path) -> list[dict[str, object]]:
    """KOTE online comments (test + val files): emotions -> sentiment; mixed ones are dropped."""
    out: list[dict[str, object]] = []
    for path in ("test.tsv", "val.tsv"):
        reader = csv.reader(io.StringIO(git_show(mirror, "kote", path).decode("utf-8")), delimiter="\t")
        for fields in reader:
            if len(fields) != 3:
                continue
            names = {KOTE_NAMES[int(i)] for i in fields[2].split(",") if i.strip().isdigit()}
            p, n = len(names & KOTE_POSITIVE), len(names & KOTE_NEGATIVE)
            if names == {"없음"}:
                label = "neutral"
            elif p >= 2 and n == 0:
                label = "positive"
            elif n >= 2 and p == 0:
                label = "negative"
            else:
                continue
            if 4 <= len(clean(fields[1])) <= 300:
                out.append(row(fields[1], label, None, "kote", "heldout"))
    rng = random.Random(SEED)
    rng.shuffle(out)
    return out[:2400]


def vader_label(mean: float) -> str | None:
    if mean >= 1.0:
        return "positive"
    if mean <= -1.0:
        return "negative"
    if abs(mean) < 0.3:
        return "neutral"
    return None  # the ambiguous band is left out


def vader(mirror: Path) -> list[dict[str, object]]:
    """VADER's human-rated sentence sets (mean of 20 ratings, -4..4)."""
    tar = git_show(mirror, "vader", "additional_resources/hutto_ICWSM_2014.tar.gz")
    import tarfile

    out: list[dict[str, object]] = []
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            name = member.name.rsplit("/", 1)[-1]
            if not name.endswith("_GroundTruth.txt"):
                continue
            source = name.split("_", 1)[0]  # tweets, movieReviewSnippets, amazonReviewSnippets, nyt...
            split = "heldout" if source == "amazonReviewSnippets" else "train"
            handle = archive.extractfile(member)
            assert handle is not None
            for line in handle.read().decode("utf-8", errors="replace").splitlines():
                parts = line.split("\t", 2)
                if len(parts) != 3:
                    continue
                label = vader_label(float(parts[1]))
                if label and len(clean(parts[2])) >= 4:
                    out.append(row(parts[2], label, None, f"vader-{source}", split))
    return out


def mams(mirror: Path) -> list[dict[str, object]]:
    """MAMS-ACSA restaurant sentences whose non-neutral aspects name one category and one polarity."""
    out: list[dict[str, object]] = []
    for part, split in (("train", "train"), ("val", "train"), ("test", "heldout")):
        root = ET.fromstring(git_show(mirror, "mams", f"data/MAMS-ACSA/raw/{part}.xml"))  # noqa: S314
        for sentence in root.iter("sentence"):
            text = sentence.findtext("text") or ""
            polar = {
                (MAMS_CATEGORY[a.get("category", "")], a.get("polarity", ""))
                for a in sentence.iter("aspectCategory")
                if a.get("polarity") in ("positive", "negative")
            }
            if len(polar) != 1:
                continue
            category, sentiment = next(iter(polar))
            if sentiment == "positive" and category in ("staff_attitude", "other"):
                category = "praise"
            out.append(row(text, sentiment, category, "mams", split))
    return out


def _grams(text: str) -> set[str]:
    t = re.sub(r"\s+", "", text.lower())
    return {t[i : i + 3] for i in range(max(1, len(t) - 2))}


def _similar(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


NEAR_DUPLICATE = 0.6  # char-3-gram Jaccard from which two sentences count as the same


def authored(folder: Path) -> list[dict[str, object]]:
    """Project-written store / restaurant / service sentences; every fifth one is held out.

    Rows too similar to an item of the project evaluation set's test split are dropped (that
    split is only ever evaluated on), and held-out rows too similar to a training row are dropped
    (so the held-out slice does not overlap what is trained on)."""
    eval_dir = Path(__file__).resolve().parents[1] / "services/feedback/src/voc_feedback/classification/data"
    out: list[dict[str, object]] = []
    for lang in ("ko", "en"):
        path = folder / f"{lang}.jsonl"
        if not path.exists():
            continue
        protected = [
            _grams(json.loads(line)["text"])
            for line in (eval_dir / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["split"] == "test"
        ]
        seen: set[str] = set()
        items = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                raw = json.loads(line)
                if raw["text"] not in seen:
                    seen.add(raw["text"])
                    items.append(raw)
        train: list[tuple[dict[str, object], set[str]]] = []
        held: list[tuple[dict[str, object], set[str]]] = []
        dropped = 0
        for i, raw in enumerate(items):
            grams = _grams(raw["text"])
            if any(_similar(grams, p) >= NEAR_DUPLICATE for p in protected):
                dropped += 1
                continue
            (held if i % 5 == 4 else train).append((raw, grams))
        kept_held = [(raw, g) for raw, g in held if all(_similar(g, t) < NEAR_DUPLICATE for _, t in train)]
        dropped += len(held) - len(kept_held)
        print(f"authored {lang}: {len(items)} rows, {dropped} dropped as near-duplicates")
        for split, chosen in (("train", train), ("heldout", kept_held)):
            for raw, _ in chosen:
                out.append(row(raw["text"], raw["sentiment"], raw["category"], f"authored-{lang}", split))
    return out


def write(name: str, rows: Iterable[dict[str, object]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()
    with (OUT / f"{name}.jsonl.gz").open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(payload)
    lines = payload.count(b"\n")
    print(f"{name}: {lines} rows")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mirror", type=Path, required=True)
    parser.add_argument("--authored", type=Path, required=True)
    args = parser.parse_args()
    built = {
        "ko-nsmc": nsmc(args.mirror),
        "ko-kote": kote(args.mirror),
        "en-vader": vader(args.mirror),
        "en-mams": mams(args.mirror),
        "authored": authored(args.authored),
    }
    # A held-out row whose text is also a training row (any source) is dropped.
    trained = {
        str(r["text"]).strip().lower() for rows in built.values() for r in rows if r["split"] == "train"
    }
    for name, rows in built.items():
        kept = [r for r in rows if r["split"] == "train" or str(r["text"]).strip().lower() not in trained]
        if len(kept) != len(rows):
            print(f"{name}: {len(rows) - len(kept)} held-out rows dropped (also training text)")
        write(name, kept)


if __name__ == "__main__":
    main()
