"""Split the blind sets into train / dev / test, once, by a fixed seed; print the test files' sha256.

Run: .venv/bin/python -m eval.split   (writes eval/data/blind/splits/; the hashes go into eval/config.toml
by hand, before anything is fitted, and `qa eval` refuses a test split whose hash has changed.)

`--by-document NAME` splits eval/data/blind2/NAME.jsonl (written blind over new documents) by document into
train / dev / test, each split with its own corpus folder NAME-<split>/ holding only its documents (they are
taken from NAME-docs/).

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





BLIND2 = Path(__file__).resolve().parent / "data" / "blind2"


def document_of(items: list[dict], documents: dict[str, str]) -> dict[str, str]:
    """Each item's document: the writers' map (NAME_docs.json) when given, else its evidence's source, else (a near
    miss without evidence) the document of the answerable item written before it (the writers go document by
    document)."""
    out, last = {}, None
    for item in items:
        doc = documents.get(item["id"]) or (item["evidence"][0]["source"] if item.get("evidence") else last)
        out[item["id"]] = last = doc
    return out


def split_by_document(name: str) -> None:
    """Split eval/data/blind2/NAME.jsonl by document, not by question: each document, with all its questions,
    goes to train, dev or test (SHARES of the documents, shuffled by SEED), and its file moves from NAME-docs/ to
    NAME-<split>/, the corpus that split's questions are asked of (a second run finds it there). Test documents
    are then unseen by anything fitted on train/dev."""
    lines = [line for line in (BLIND2 / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [json.loads(line) for line in lines]
    map_file = BLIND2 / f"{name}_docs.json"
    doc = document_of(items, json.loads(map_file.read_text()) if map_file.exists() else {})
    documents = sorted({d for d in doc.values() if d})
    rng = random.Random(SEED)
    rng.shuffle(documents)
    cut1 = round(SHARES["train"] * len(documents))
    cut2 = cut1 + round(SHARES["dev"] * len(documents))
    split_of = {d: "train" if i < cut1 else "dev" if i < cut2 else "test" for i, d in enumerate(documents)}
    # A question that quotes two documents which went to different splits is left out: its split's corpus lacks
    # one of them, and keeping it would show a test document to train or dev.
    straddling = {item["id"] for item in items
                  if len({split_of.get(e["source"]) for e in item.get("evidence", [])} | {split_of[doc[item["id"]]]}) > 1}
    if straddling:
        print(f"left out ({len(straddling)}), quoting documents of two splits: {', '.join(sorted(straddling))}")
    target = BLIND2 / "splits"
    target.mkdir(exist_ok=True)
    for split in ("train", "dev", "test"):
        folder = BLIND2 / f"{name}-{split}"
        folder.mkdir(exist_ok=True)
        for d in documents:
            if split_of[d] == split and not (folder / d).exists():
                (BLIND2 / f"{name}-docs" / d).rename(folder / d)
        part = [line for line, item in zip(lines, items)
                if split_of.get(doc[item["id"]]) == split and item["id"] not in straddling]
        out = target / f"{name}.{split}.jsonl"
        out.write_text("\n".join(part) + "\n", encoding="utf-8")
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        n_docs = sum(v == split for v in split_of.values())
        print(f"{out.relative_to(BLIND2.parent)}  {len(part)} items over {n_docs} documents  sha256 {digest}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--by-document"]:
        split_by_document(sys.argv[2])
    elif sys.argv[1:] == ["--extra"]:
        split_extra()
    else:
        main()
