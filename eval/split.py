"""Split the blind sets into train / dev / test, once, by a fixed seed; print the test files' sha256.

Run: .venv/bin/python -m eval.split   (writes eval/data/blind/splits/; the hashes go into eval/config.toml
by hand, before anything is fitted, and `qa eval` refuses a test split whose hash has changed.)

`--extra` splits the later sets in eval/data/blind/extra/ (written blind too, after the test split was frozen)
into train and dev only: the test split stays the one frozen before anything was fitted.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

BLIND = Path(__file__).resolve().parent / "data" / "blind"
SETS = ("news", "plain", "markdown", "html", "report")
SHARES = {"train": 0.45, "dev": 0.20}  # the rest is test
SEED = 20261123
EXTRA_DEV_SHARE = 0.35
TRIVIAL_ANSWERS = {"first", "no", "yes", "one", "$"}  # occur almost anywhere: they would label any sentence right


def split_items(lines: list[str], rng: random.Random, shares: dict[str, float] = SHARES,
                rest: str = "test") -> dict[str, list[str]]:
    """Stratified by answerable, so each split keeps the set's share of near-miss unanswerables: each of
    `shares` takes its share of a shuffled group in turn, `rest` what is left."""
    out = {name: [] for name in [*shares, rest]}
    for answerable in (True, False):
        group = [line for line in lines if json.loads(line)["answerable"] is answerable]
        rng.shuffle(group)
        taken = 0
        for name, share in shares.items():
            n = round(share * len(group))
            out[name] += group[taken:taken + n]
            taken += n
        out[rest] += group[taken:]
    order = {line: i for i, line in enumerate(lines)}
    return {name: sorted(part, key=order.__getitem__) for name, part in out.items()}


def main() -> None:
    rng = random.Random(SEED)
    target = BLIND / "splits"
    target.mkdir(exist_ok=True)
    for name in SETS:
        lines = [line for line in (BLIND / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        for split, part in split_items(lines, rng).items():
            path = target / f"{name}.{split}.jsonl"
            path.write_text("\n".join(part) + "\n", encoding="utf-8")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            print(f"{path.relative_to(BLIND.parent)}  {len(part)} items  sha256 {digest}")


def split_extra() -> None:
    rng = random.Random(SEED)
    target = BLIND / "splits"
    for path in sorted((BLIND / "extra").glob("*.jsonl")):
        items = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            item["answers"] = [a for a in item["answers"] if a.lower() not in TRIVIAL_ANSWERS]
            if item["answers"] or not item["answerable"]:
                items.append(json.dumps(item, ensure_ascii=False))
        parts = split_items(items, rng, {"dev": EXTRA_DEV_SHARE}, rest="train")
        for split, part in parts.items():
            out = target / f"{path.stem}-extra.{split}.jsonl"
            out.write_text("\n".join(part) + "\n", encoding="utf-8")
            print(f"{out.relative_to(BLIND.parent)}  {len(part)} items")


if __name__ == "__main__":
    split_extra() if sys.argv[1:] == ["--extra"] else main()
