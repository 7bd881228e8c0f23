"""Fit the sentence selector: logistic regression over SELECTOR_FEATURES, threshold chosen on dev.

Train: the sets the hand-set rules were written from (reference, harbour, calibration) and the blind
train splits, each blind question in both its wordings. Dev: the blind dev splits, used only to choose
the abstention threshold. The test splits are never read here.

Run: .venv/bin/python -m eval.fit   (writes eval/reports/selector.json, the candidate model with its dev
scores; copying it to qa/selector.json makes the engine use it instead of the hand-set rules)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from index.build import build_index
from index.config import load_settings
from qa.answer import KEEP_RATIO, MAX_SENTENCES, SELECTOR_FEATURES, candidates, selector_probability, term_weights
from qa.engine import ANSWER_POOL, QA, split_question
from qa.followup import resolve_followup
from qa.question import analyse

from .metrics import is_correct, load_set, normalise
from .run import DATA_DIR, load_config

CANDIDATE_FILE = Path(__file__).resolve().parent / "reports" / "selector.json"
TRAIN = ("reference", "harbour", "calibration")


def set_files(config: dict) -> dict[str, list[tuple[str, Path, Path]]]:
    """split -> [(name, set file, corpus folder)]; the calibration set is over seeds/ and only trains."""
    out = {"train": [], "dev": []}
    for name, conf in config["sets"].items():
        split = conf.get("split", "train" if name in TRAIN else "test")
        if split in out:
            out[split].append((name, (DATA_DIR / conf["file"]).resolve(), (DATA_DIR / conf["corpus"]).resolve()))
    out["train"].append(("calibration", DATA_DIR / "calibration.jsonl", (DATA_DIR / "../../seeds").resolve()))
    return out


def item_candidates(qa: QA, question: str, history) -> list:
    """Every candidate sentence for a question, as the engine sees them (follow-up resolved, parts split)."""
    index = qa.index
    pool = []
    for part in split_question(resolve_followup(question, [tuple(h) for h in history])):
        passages = index.search(part, k=ANSWER_POOL)
        if not passages:
            continue
        spec = analyse(part)
        weights = term_weights(spec, index.document_frequency, index.n_chunks)
        pool += candidates(spec, passages, weights, index.embed(part),
                           index.sentence_vectors([p.chunk_id for p in passages]), index.document_text)
    return pool


def label(candidate, item) -> int:
    """1 when the sentence holds an acceptable answer and comes from an evidence document."""
    if not item.answerable:
        return 0
    sources = {source for source, _ in item.evidence}
    text = normalise(candidate.text)
    return int((not sources or candidate.passage.source in sources)
               and any(normalise(a) and normalise(a) in text for a in item.answers))


def collect(split_sets, settings, paraphrases: bool):
    """(item, wording, candidates) for every item of the sets, in both wordings when asked."""
    rows = []
    for name, path, corpus in split_sets:
        set_settings = settings.with_(corpus=corpus, index_dir=settings.index_dir / "eval" / corpus.name)
        build_index(set_settings, corpus)
        qa = QA(set_settings, build_if_missing=False)
        raw = {json.loads(line)["id"]: json.loads(line) for line in path.read_text().splitlines() if line.strip()}
        for item in load_set(path):
            wordings = [item.question]
            if paraphrases and raw[item.id].get("paraphrase"):
                wordings.append(raw[item.id]["paraphrase"])
            for wording in wordings:
                rows.append((item, wording, item_candidates(qa, wording, item.history)))
        print(f"  {name}: {len(raw)} items", file=sys.stderr)
    return rows


NEAR_MISS_WEIGHT = 3.0


def sample_weights(rows, y: np.ndarray) -> np.ndarray:
    """Each question weighs the same (a long pool does not count more), a near-miss question NEAR_MISS_WEIGHT
    times; positives and negatives then weigh the same in total. Chosen on dev among 1, 3 and 10 times, per
    sentence or per question: unweighted, the fit learned that a sentence rich in names and numbers answers
    whatever is asked, and answered near misses of the training set itself."""
    weights = np.array([(1.0 if item.answerable else NEAR_MISS_WEIGHT) / len(pool)
                        for item, _, pool in rows for _ in pool])
    weights[y == 1] *= weights[y == 0].sum() / max(weights[y == 1].sum(), 1e-9)
    return weights / weights.mean()


def simulate(rows, model: dict, threshold: float) -> dict:
    """Answer-level outcome of a threshold: the best sentences qa.answer.selector_keeps, else abstain."""
    correct = wrong = abstained_answerable = abstained_unanswerable = unanswerable = answerable = 0
    qualified = SELECTOR_FEATURES.index("rules_qualify")
    for item, _, pool in rows:
        scored = sorted((selector_probability(model, c.features), c.features[qualified], c.text) for c in pool)[::-1]
        kept = [(p, t) for p, q, t in scored if p >= threshold or q]  # as qa.answer.selector_keeps
        chosen = [t for p, t in kept if p >= KEEP_RATIO * kept[0][0]][:MAX_SENTENCES]
        if item.answerable:
            answerable += 1
            if not chosen:
                abstained_answerable += 1
            elif is_correct(" ".join(chosen), item.answers, item.all):
                correct += 1
            else:
                wrong += 1
        else:
            unanswerable += 1
            abstained_unanswerable += not chosen
            wrong += bool(chosen)
    n = answerable + unanswerable
    return {"threshold": round(threshold, 3), "correctness": round(correct / max(answerable, 1), 3),
            "false_abstention": round(abstained_answerable / max(answerable, 1), 3),
            "abstention_recall": round(abstained_unanswerable / max(unanswerable, 1), 3),
            "truthfulness": round((correct - wrong) / max(n, 1), 3)}


def simulate_ranker(rows, threshold: float) -> dict:
    """The sentence-ranker baseline at one cosine threshold (its only fitted number)."""
    cos, lexical = SELECTOR_FEATURES.index("cos"), SELECTOR_FEATURES.index("coverage_sentence")
    correct = wrong = answered = answerable = 0
    unanswerable = abstained_unanswerable = 0
    for item, _, pool in rows:
        top = sorted(pool, key=lambda c: -(c.features[cos] + c.features[lexical]))[:2]
        answers = bool(top) and max(c.features[cos] for c in pool) >= threshold
        if item.answerable:
            answerable += 1
            answered += answers
            if answers:
                ok = is_correct(" ".join(c.text for c in top), item.answers, item.all)
                correct += ok
                wrong += not ok
        else:
            unanswerable += 1
            abstained_unanswerable += not answers
            wrong += answers
    return {"threshold": round(threshold, 3), "correctness": round(correct / max(answerable, 1), 3),
            "abstention_recall": round(abstained_unanswerable / max(unanswerable, 1), 3),
            "truthfulness": round((correct - wrong) / max(answerable + unanswerable, 1), 3)}


def main() -> int:
    from sklearn.linear_model import LogisticRegression

    config = load_config()
    settings = load_settings()
    sets = set_files(config)
    print("train:", file=sys.stderr)
    train = collect(sets["train"], settings, paraphrases=True)
    print("dev:", file=sys.stderr)
    dev = collect(sets["dev"], settings, paraphrases=False)
    x = np.array([c.features for _, _, pool in train for c in pool], dtype=np.float64)
    y = np.array([label(c, item) for item, _, pool in train for c in pool])
    mean, std = x.mean(0), x.std(0) + 1e-9
    fit = LogisticRegression(C=0.3, max_iter=3000).fit((x - mean) / std, y, sample_weight=sample_weights(train, y))
    model = {"features": list(SELECTOR_FEATURES), "mean": mean.tolist(), "std": std.tolist(),
             "weights": fit.coef_[0].tolist(), "bias": float(fit.intercept_[0]), "threshold": 0.5}
    grid = [simulate(dev, model, t) for t in np.linspace(0.05, 0.99, 95)]
    feasible = [g for g in grid if g["abstention_recall"] >= 0.8] or grid
    best = max(feasible, key=lambda g: (g["truthfulness"], g["correctness"]))
    model["threshold"] = best["threshold"]
    ranker = max((simulate_ranker(dev, t) for t in np.linspace(0.0, 0.9, 91)),
                 key=lambda g: (g["truthfulness"], g["correctness"]))
    model["ranker_threshold"] = ranker["threshold"]
    model["fitted_on"] = {"train_sets": [n for n, _, _ in sets["train"]], "train_wordings": len(train),
                          "candidates": int(len(y)), "positives": int(y.sum()),
                          "dev_sets": [n for n, _, _ in sets["dev"]], "dev_at_threshold": best,
                          "train_at_threshold": simulate(train, model, best["threshold"]),
                          "ranker_dev": ranker}
    CANDIDATE_FILE.write_text(json.dumps(model, indent=1) + "\n")
    print(json.dumps(model["fitted_on"], indent=1))
    for name, weight in sorted(zip(SELECTOR_FEATURES, model["weights"]), key=lambda kv: -abs(kv[1])):
        print(f"  {name:20s} {weight:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
