"""The grounding guard against hand labels: generated sentences, each read against the passages it cites.

    python -m eval.guard_eval collect --llm gguf:gemma3-270m [--set FILE] [--out FILE]
        answers each question of the set with the LLM (seeds/ index) and writes one row per generated sentence:
        question, sentence, the cited passages (texts and offsets), the guard's verdict, and the whole draft;
        plus, per question, the draft (no guard) and the guarded answer with their correctness
    python -m eval.guard_eval score [--labels eval/data/guard-labels.jsonl] [--out eval/reports/guard-gguf.json]
        runs the guard again on every labelled sentence and reports its precision and recall: a sentence
        the guard keeps is a positive; `supported` (the hand label) is the truth
    python -m eval.guard_eval split     the label files into eval/data/guard-splits/{fit,test}.jsonl by question
    python -m eval.guard_eval fit       the guard's thresholds on the fit split (highest recall at precision 1.00)

Labels (eval/data/guard-labels.jsonl) are read by hand against the passages stored with each row. A sentence
that wraps a passage's words in the prompt's own scaffolding ("The passages are quoted inside the passages
tags: <passages> (file > heading) ...") is labelled unsupported: as a sentence shown to a user it states
things no passage says; its note says when the copied fact itself is in a passage.

A sentence that cites no existing passage is never kept; it is labelled unsupported-as-cited and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "eval" / "data" / "guard-labels.jsonl"


def _open_qa(index_dir: Path):
    from index.config import load_settings
    from qa.engine import QA

    return QA(load_settings(corpus=ROOT / "seeds", index_dir=index_dir))


def _passages(qa, question: str, history):
    """The passages numbered [1]..[k] in the prompt, retrieved as qa.engine does for an LLM."""
    from qa.engine import split_question
    from qa.followup import resolve_followup

    search_query = resolve_followup(question, history)
    found = [qa.retrieve(part, k=5) for part in split_question(search_query)]
    return list({p.chunk_id: p for ps in found for p in ps}.values())


def collect(spec: str, set_file: Path, out: Path, summary: Path | None, limit: int | None = None) -> None:
    from eval.metrics import is_correct, load_set
    from qa.llm import open_llm

    llm = open_llm(spec)
    llm.model  # noqa: B018
    rows, per_question = [], []
    out.parent.mkdir(parents=True, exist_ok=True)
    sink = out.open("w", encoding="utf-8")  # a row per sentence as it comes: a long run can be stopped early
    with sink, tempfile.TemporaryDirectory() as tmp:
        qa = _open_qa(Path(tmp) / "index")
        for item in load_set(set_file)[:limit]:
            history = [tuple(h) for h in item.history]
            draft: list[str] = []
            answer = qa.ask(item.question, history=history, llm=llm, on_token=draft.append)
            passages = _passages(qa, item.question, history)
            text = "".join(draft)
            per_question.append({
                "id": item.id, "answerable": item.answerable, "draft": text, "answer": answer.answer,
                "generator": answer.generator, "abstained": answer.abstained,
                "draft_correct": item.answerable and is_correct(text, item.answers, item.all),
                "guarded_correct": item.answerable and is_correct(answer.answer, item.answers, item.all),
                "draft_abstains": "not in the documents" in text.lower()})
            for s in answer.sentences:
                cited = [n for n in s.cited_passages if 1 <= n <= len(passages)]
                by_model = bool(cited)
                if not by_model:  # cites nothing usable: label it against every passage the model was given
                    cited = list(range(1, len(passages) + 1))
                rows.append({
                    "id": item.id, "model": spec, "question": item.question, "sentence": s.text,
                    "cited": list(s.cited_passages),
                    "cited_by_model": by_model,
                    "passages": [{"n": n, "source": passages[n - 1].source, "start": passages[n - 1].start,
                                  "end": passages[n - 1].end, "text": passages[n - 1].text} for n in cited],
                    "guard_kept": s.kept, "guard_reason": s.reason, "draft": text})
            for r in rows[len(rows) - len(answer.sentences):]:
                sink.write(json.dumps(r, ensure_ascii=False) + "\n")
            sink.flush()
            if summary:
                summary.write_text(json.dumps(per_question, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{item.id}: {len(answer.sentences)} sentences, {answer.generator}", file=sys.stderr)
    answerable = [q for q in per_question if q["answerable"]]
    print(f"{spec}: {len(rows)} sentences from {len(per_question)} questions; correct (answerable, "
          f"{len(answerable)}): draft {sum(q['draft_correct'] for q in answerable)}, "
          f"guarded {sum(q['guarded_correct'] for q in answerable)}")


def _rates(pairs: list[tuple[bool, bool]]) -> dict:
    """Precision and recall of (kept, truly supported) pairs: kept is the positive."""
    tp = sum(k and t for k, t in pairs)
    fp = sum(k and not t for k, t in pairs)
    fn = sum(t and not k for k, t in pairs)
    tn = sum(not k and not t for k, t in pairs)
    return {"n": len(pairs), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": round(tp / (tp + fp), 3) if tp + fp else None,
            "recall": round(tp / (tp + fn), 3) if tp + fn else None}


def score(labels: Path) -> dict:
    """The guard run afresh on each labelled sentence, against the hand label `supported`.

    `support`: the guard's judgement of the sentence against its passages (those it cites, or for a sentence
    citing nothing every passage the model was given): does find_support call it supported?
    `as_shown`: what the user sees: a sentence is kept only when it cites a passage and that judgement holds;
    truth is the label for a cited sentence and False for an uncited one (it cannot be shown as cited)."""
    if labels.resolve() == (GUARD_SPLITS / "test.jsonl").resolve():
        import hashlib

        from eval.run import load_config

        frozen = load_config()["guard"]["test_sha256"]
        if hashlib.sha256(labels.read_bytes()).hexdigest() != frozen:
            raise SystemExit(f"{labels} changed since its hash was frozen in eval/config.toml: not scored")
    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        return _judge(rows, _open_qa(Path(tmp) / "index").index.embed)


def _judge(rows: list[dict], embed) -> dict:
    """score()'s work on rows already read, with an embedding function already open."""
    from qa.guard import find_support
    from qa.types import Passage

    support, shown, errors = [], [], []
    for r in rows:
        cited = [Passage(chunk_id=f"{p['source']}:{p['start']}", source=p["source"], start=p["start"],
                         end=p["end"], text=p["text"], line=0, score=0.0) for p in r["passages"]]
        judged = bool(cited) and find_support(r["sentence"], cited, embed).supported
        truth, by_model = bool(r["supported"]), r.get("cited_by_model", bool(r.get("cited")))
        support.append((judged, truth))
        shown.append((judged and by_model, truth and by_model))
        if judged != truth:
            errors.append({"model": r.get("model"), "sentence": r["sentence"], "supported": truth,
                           "guard": judged, "kind": r.get("kind", ""), "note": r.get("note", "")})
    models = sorted({r.get("model", "") for r in rows})
    return {"labelled": len(rows), "models": {m: sum(r.get("model", "") == m for r in rows) for m in models},
            "supported_labels": sum(t for _, t in support), "support": _rates(support),
            "as_shown": _rates(shown), "disagreements": errors}


GUARD_SPLITS = ROOT / "eval" / "data" / "guard-splits"
LABEL_FILES = (LABELS, ROOT / "eval" / "data" / "guard-labels-written.jsonl")


def split_labels() -> None:
    """Every labelled sentence into fit (50%) or test by its question (the same question never in both), once.

    The test file's sha256 goes into eval/config.toml ([guard] test_sha256) before anything is fitted."""
    import hashlib
    import random

    lines = [line for path in LABEL_FILES if path.exists()
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    key_of = {line: (row.get("model", ""), row["id"]) for line in lines for row in [json.loads(line)]}
    keys = sorted(set(key_of.values()))
    random.Random(20261201).shuffle(keys)
    test_keys = set(keys[: len(keys) // 2])
    GUARD_SPLITS.mkdir(exist_ok=True)
    parts = {"fit": [], "test": []}
    for line in lines:
        parts["test" if key_of[line] in test_keys else "fit"].append(line)
    for name, lines in parts.items():
        path = GUARD_SPLITS / f"{name}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        supported = sum(json.loads(line)["supported"] for line in lines)
        print(f"{path.relative_to(ROOT)}: {len(lines)} sentences, {supported} supported, "
              f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")


def fit_thresholds(labels: Path) -> dict:
    """The guard's two thresholds on the fit split: the highest recall at precision 1.00 (else the best precision)."""
    import itertools
    from functools import lru_cache

    import qa.guard as guard_module

    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    default = (guard_module.MIN_COVERAGE, guard_module.MIN_COSINE)
    with tempfile.TemporaryDirectory() as tmp:
        embed = lru_cache(maxsize=None)(_open_qa(Path(tmp) / "index").index.embed)
        grid = []
        try:
            for coverage, cosine in itertools.product([x / 100 for x in range(50, 101, 5)],
                                                      [x / 100 for x in range(30, 91, 5)]):
                guard_module.MIN_COVERAGE, guard_module.MIN_COSINE = coverage, cosine
                rates = _judge(rows, embed)["support"]
                grid.append({"min_coverage": coverage, "min_cosine": cosine, **rates})
        finally:
            guard_module.MIN_COVERAGE, guard_module.MIN_COSINE = default
    exact = [g for g in grid if g["precision"] == 1.0]
    best = max(exact or grid, key=lambda g: ((g["precision"] or 0) if not exact else 0, g["recall"] or 0,
                                              g["min_coverage"] == default[0] and g["min_cosine"] == default[1]))
    at_default = next(g for g in grid if (g["min_coverage"], g["min_cosine"]) == default)
    def dominates(h: dict, g: dict) -> bool:
        hp, hr, gp, gr = h["precision"] or 0, h["recall"] or 0, g["precision"] or 0, g["recall"] or 0
        return hp >= gp and hr >= gr and (hp > gp or hr > gr)

    frontier = [g for g in grid if not any(dominates(h, g) for h in grid)]
    return {"fit_labels": str(labels.relative_to(ROOT)), "sentences": len(rows), "chosen": best,
            "at_current": at_default, "frontier": sorted(frontier, key=lambda g: -(g["precision"] or 0))}


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m eval.guard_eval", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--llm", required=True)
    c.add_argument("--set", type=Path, default=ROOT / "eval" / "data" / "reference.jsonl")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--summary", type=Path)
    c.add_argument("--limit", type=int, help="only the first N questions")
    s = sub.add_parser("score")
    s.add_argument("--labels", type=Path, default=LABELS)
    s.add_argument("--out", type=Path)
    sub.add_parser("split", help="split every label file into fit / test by question, once")
    f = sub.add_parser("fit", help="the guard's thresholds on the fit split")
    f.add_argument("--labels", type=Path, default=GUARD_SPLITS / "fit.jsonl")
    f.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "collect":
        collect(args.llm, args.set, args.out, args.summary, args.limit)
    elif args.command == "split":
        split_labels()
    else:
        result = score(args.labels) if args.command == "score" else fit_thresholds(args.labels)
        text = json.dumps(result, indent=1, ensure_ascii=False)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main()
