"""Fit the sentence selector: logistic regression over SELECTOR_FEATURES, threshold chosen on dev.

Train: the sets the hand-set rules were written from (reference, harbour, calibration) and the blind
train splits, each blind question in both its wordings. Dev: the blind dev splits, used only to choose
the abstention threshold. The test splits are never read here.

Run: .venv/bin/python -m eval.fit   (writes eval/reports/selector.json, the candidate model with its dev
scores; copying it to qa/selector.json makes the engine use it instead of the hand-set rules)

     .venv/bin/python -m eval.fit --reader [--cache FILE]   (the selector on the reader's scores: writes
eval/reports/reader.json; copying it to qa/reader.json makes the engine use it; see docs/reader.md)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from index.build import build_index
from index.config import load_settings
from qa.answer import (
    KEEP_RATIO,
    MAX_SENTENCES,
    READER_FEATURES,
    SELECTOR_FEATURES,
    absent_names,
    candidates,
    read,
    reader_answers,
    selector_probability,
    term_weights,
    with_pair,
)
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
                          "candidates": len(y), "positives": int(y.sum()),
                          "dev_sets": [n for n, _, _ in sets["dev"]], "dev_at_threshold": best,
                          "train_at_threshold": simulate(train, model, best["threshold"]),
                          "ranker_dev": ranker}
    CANDIDATE_FILE.write_text(json.dumps(model, indent=1) + "\n")
    print(json.dumps(model["fitted_on"], indent=1))
    for name, weight in sorted(zip(SELECTOR_FEATURES, model["weights"]), key=lambda kv: -abs(kv[1])):
        print(f"  {name:20s} {weight:+.3f}")
    return 0


if __name__ == "__main__" and not sys.argv[1:]:
    sys.exit(main())


# -- the selector fitted on the reader's scores (python -m eval.fit --reader) ------------------------------------

READER_CANDIDATE_FILE = Path(__file__).resolve().parent / "reports" / "reader.json"
# The feature sets compared on dev for the abstention on the reader's pick: the reader's alone, with a few cheap
# features, and with all of them.
READER_FEATURE_SETS = {
    "reader only": READER_FEATURES,
    "reader + coverage, kind, names": READER_FEATURES + ("coverage", "coverage_sentence", "type_missing",
                                                         "pool_missing", "names_sentence", "cos"),
    "reader + all": READER_FEATURES + SELECTOR_FEATURES,
}
def item_reads(qa: QA, question: str, history) -> list[tuple]:
    """(part's QuestionSpec, whether it names something the corpus lacks, read pool) for each part of a question."""
    index = qa.index
    out = []
    for part in split_question(resolve_followup(question, [tuple(h) for h in history])):
        passages = index.search(part, k=ANSWER_POOL)
        spec = analyse(part)
        if not passages:
            out.append((spec, False, []))
            continue
        weights = term_weights(spec, index.document_frequency, index.n_chunks)
        pool = candidates(spec, passages, weights, index.embed(part),
                          index.sentence_vectors([p.chunk_id for p in passages]), index.document_text)
        out.append((spec, bool(absent_names(spec, index.document_frequency)), read(spec, pool, index.document_text)))
    return out


def collect_reads(split_sets, settings, cache: Path | None = None) -> list[tuple]:
    """(item, wording number, parts) for every item in both its wordings; with cache (a folder), each set's rows are
    kept in (or taken from) cache/<set>.pkl, so that a refit reads only the sets it has not read before."""
    import pickle

    rows = []
    for name, path, corpus in split_sets:
        cached = cache / f"{name}.pkl" if cache else None
        if cached and cached.exists():
            rows += pickle.loads(cached.read_bytes())
            continue
        set_settings = settings.with_(corpus=corpus, index_dir=settings.index_dir / "eval" / corpus.name)
        build_index(set_settings, corpus)
        qa = QA(set_settings, build_if_missing=False)
        set_rows = []
        for item in load_set(path):
            for n, text in enumerate([item.question] + ([item.paraphrase] if item.paraphrase else [])):
                set_rows.append((item, n, item_reads(qa, text, item.history)))
        if cached:
            cache.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(pickle.dumps(set_rows))
        rows += set_rows
        print(f"  {name}: {len(set_rows)} wordings", file=sys.stderr, flush=True)
    return rows


def reader_vector(features, c, extra: dict) -> list[float]:
    named = dict(zip(SELECTOR_FEATURES, c.features)) | extra
    return [named[f] for f in features]


def simulate_reader(rows, model: dict, threshold: float, honour_absent_names: bool = True) -> dict:
    """Answer-level outcome as the engine answers (qa.answer.reader_answers for each part); a part naming what the
    corpus lacks abstains when honour_absent_names."""
    model = {**model, "threshold": threshold}
    outcomes = []
    for item, _, parts in rows:
        chosen = [c for spec, absent, pool in parts if not (absent and honour_absent_names)
                  for c in reader_answers(model, spec, pool)]
        outcomes.append((item, " ".join(c.text for c in chosen) if chosen else None))
    return outcome_scores(outcomes, threshold)


def outcome_scores(outcomes, threshold: float) -> dict:
    """Correctness, abstention and truthfulness of (item, answer text or None for an abstention) pairs."""
    answerable = [(i, t) for i, t in outcomes if i.answerable]
    unanswerable = [(i, t) for i, t in outcomes if not i.answerable]
    correct = sum(t is not None and is_correct(t, i.answers, i.all) for i, t in answerable)
    wrong = sum(t is not None for i, t in outcomes) - correct
    return {"threshold": round(float(threshold), 3), "correctness": round(correct / max(len(answerable), 1), 3),
            "false_abstention": round(sum(t is None for _, t in answerable) / max(len(answerable), 1), 3),
            "abstention_recall": round(sum(t is None for _, t in unanswerable) / max(len(unanswerable), 1), 3),
            "truthfulness": round((correct - wrong) / max(len(outcomes), 1), 3)}


def simulate_reranker(rows, threshold: float) -> dict:
    """The "reranker top sentence" baseline: the reader's best sentence of each part, kept when its logit reaches
    the threshold (its only fitted number)."""
    outcomes = []
    for item, _, parts in rows:
        kept = [pool[0][0].text for _, _, pool in parts if pool and pool[0][1]["reader"] >= threshold]  # best first
        outcomes.append((item, " ".join(kept) if kept else None))
    return outcome_scores(outcomes, threshold)


def choose_threshold(rows, model: dict) -> dict:
    """The rule fixed before: best dev truthfulness among thresholds with abstention recall >= 0.80."""
    grid = [simulate_reader(rows, model, t) for t in np.linspace(0.05, 0.99, 95)]
    feasible = [g for g in grid if g["abstention_recall"] >= 0.8] or grid
    return max(feasible, key=lambda g: (g["truthfulness"], g["correctness"]))


def fit_reader(train, features: tuple[str, ...]) -> dict:
    """Logistic regression: does the reader's pick of a question part answer it? One row per part of each wording,
    a near miss weighing NEAR_MISS_WEIGHT times."""
    from sklearn.linear_model import LogisticRegression

    x, y, weights = [], [], []
    for item, _, parts in train:
        for spec, _, pool in parts:
            if not pool:
                continue
            c, extra = max(pool, key=lambda r: r[1]["reader_pair"])
            text = with_pair(spec, c, extra).text
            x.append(reader_vector(features, c, extra))
            y.append(int(item.answerable and is_correct(text, item.answers, item.all and len(parts) == 1)))
            weights.append(1.0 if item.answerable else NEAR_MISS_WEIGHT)
    x, y = np.array(x, dtype=np.float64), np.array(y)
    mean, std = x.mean(0), x.std(0) + 1e-9
    fit = LogisticRegression(C=0.3, max_iter=3000).fit((x - mean) / std, y, sample_weight=np.array(weights))
    return {"features": list(features), "mean": mean.tolist(), "std": std.tolist(), "weights": fit.coef_[0].tolist(),
            "bias": float(fit.intercept_[0]), "threshold": 0.5, "rows": len(y), "positives": int(y.sum())}


def main_reader(cache: Path | None = None) -> int:
    """Fit the reader's selector (cache: see collect_reads)."""
    config = load_config()
    settings = load_settings()
    sets = set_files(config)
    print("train:", file=sys.stderr)
    train = collect_reads(sets["train"], settings, cache)
    print("dev:", file=sys.stderr)
    dev = collect_reads(sets["dev"], settings, cache)
    dev_first = [r for r in dev if r[1] == 0]
    results = {}
    for name, features in READER_FEATURE_SETS.items():  # threshold on dev's both wordings: both are targets
        model = fit_reader(train, features)
        best = choose_threshold(dev, model)
        model["threshold"] = best["threshold"]
        results[name] = (model, best)
        print(f"{name}: dev {best}", file=sys.stderr)
    name, (model, best) = max(results.items(), key=lambda kv: (kv[1][1]["truthfulness"], kv[1][1]["correctness"]))
    reranker = max((simulate_reranker(dev, t) for t in np.linspace(-6, 8, 57)),
                   key=lambda g: (g["truthfulness"], g["correctness"]))
    model["reranker_threshold"] = reranker["threshold"]
    model["fitted_on"] = {
        "train_sets": [n for n, _, _ in sets["train"]], "train_wordings": len(train),
        "dev_sets": [n for n, _, _ in sets["dev"]], "feature_set": name,
        "feature_sets_dev": {n: b for n, (_, b) in results.items()},
        "dev_at_threshold": best, "dev_first_wording": simulate_reader(dev_first, model, best["threshold"]),
        "dev_second_wording": simulate_reader([r for r in dev if r[1] == 1], model, best["threshold"]),
        "dev_without_absent_names_rule": simulate_reader(dev, model, best["threshold"], False),
        "train_at_threshold": simulate_reader(train, model, best["threshold"]), "reranker_dev": reranker}
    READER_CANDIDATE_FILE.write_text(json.dumps(model, indent=1) + "\n")
    print(json.dumps(model["fitted_on"], indent=1))
    for feature, weight in sorted(zip(model["features"], model["weights"]), key=lambda kv: -abs(kv[1])):
        print(f"  {feature:20s} {weight:+.3f}")
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--reader"]:
    sys.exit(main_reader(Path(sys.argv[3]) if sys.argv[2:3] == ["--cache"] else None))
