"""The grounding guard against hand labels: generated sentences, each read against the passages it cites.

    python -m eval.guard_eval collect --llm gguf:gemma3-270m [--set FILE] [--out FILE]
        answers each question of the set with the LLM (seeds/ index) and writes one row per generated sentence:
        question, sentence, the cited passages (texts and offsets), the guard's verdict, and the whole draft;
        plus, per question, the draft (no guard) and the guarded answer with their correctness
    python -m eval.guard_eval score [--labels eval/data/guard-labels.jsonl]
        runs the guard again on every labelled sentence and reports its precision and recall: a sentence
        the guard keeps is a positive; `supported` (the hand label) is the truth

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
    with tempfile.TemporaryDirectory() as tmp:
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
                rows.append({
                    "id": item.id, "model": spec, "question": item.question, "sentence": s.text,
                    "cited": list(s.cited_passages),
                    "passages": [{"n": n, "source": passages[n - 1].source, "start": passages[n - 1].start,
                                  "end": passages[n - 1].end, "text": passages[n - 1].text} for n in cited],
                    "guard_kept": s.kept, "guard_reason": s.reason, "draft": text})
            print(f"{item.id}: {len(answer.sentences)} sentences, {answer.generator}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    if summary:
        summary.write_text(json.dumps(per_question, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    answerable = [q for q in per_question if q["answerable"]]
    print(f"{spec}: {len(rows)} sentences from {len(per_question)} questions; correct (answerable, "
          f"{len(answerable)}): draft {sum(q['draft_correct'] for q in answerable)}, "
          f"guarded {sum(q['guarded_correct'] for q in answerable)}")


def score(labels: Path) -> dict:
    """Guard precision/recall against the labels, the guard run afresh on each sentence and its cited passages."""
    from qa.guard import find_support
    from qa.types import Passage

    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        embed = _open_qa(Path(tmp) / "index").index.embed
        tp = fp = fn = tn = 0
        errors = []
        for r in rows:
            cited = [Passage(chunk_id=f"{p['source']}:{p['start']}", source=p["source"], start=p["start"],
                             end=p["end"], text=p["text"], line=0, score=0.0) for p in r["passages"]]
            kept = bool(cited) and find_support(r["sentence"], cited, embed).supported
            truth = bool(r["supported"])
            tp, fp, fn, tn = tp + (kept and truth), fp + (kept and not truth), fn + (truth and not kept), \
                tn + (not kept and not truth)
            if kept != truth:
                errors.append({"sentence": r["sentence"], "supported": truth, "kept": kept, "note": r.get("note", "")})
    result = {"labelled": len(rows), "supported": tp + fn, "unsupported": fp + tn, "kept": tp + fp,
              "tp": tp, "fp": fp, "fn": fn, "tn": tn,
              "precision": round(tp / (tp + fp), 3) if tp + fp else None,
              "recall": round(tp / (tp + fn), 3) if tp + fn else None,
              "unsupported_removed": round(tn / (fp + tn), 3) if fp + tn else None, "errors": errors}
    return result


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
    args = parser.parse_args(argv)
    if args.command == "collect":
        collect(args.llm, args.set, args.out, args.summary, args.limit)
    else:
        result = score(args.labels)
        text = json.dumps(result, indent=1, ensure_ascii=False)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main()
