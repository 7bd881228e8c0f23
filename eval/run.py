"""`qa eval`: run the systems over the eval sets, score, report, and gate on floors."""

from __future__ import annotations

import hashlib
import json
import sys
import time
import tomllib
from dataclasses import asdict
from pathlib import Path

from index.build import build_index
from index.config import Settings
from index.errors import NotFoundError, UsageError
from qa.engine import QA

from .judge import supports
from .metrics import aggregate, load_set, score_item
from .report import write_reports
from .systems import all_systems

EVAL_DIR = Path(__file__).resolve().parent
DATA_DIR = EVAL_DIR / "data"


def load_config() -> dict:
    return tomllib.loads((EVAL_DIR / "config.toml").read_text())


def judge_accuracy(threshold: float) -> dict:
    """The support judge against the hand-labelled fixture."""
    rows = [json.loads(line) for line in (DATA_DIR / "judge_fixture.jsonl").read_text().splitlines() if line]
    wrong = [r["id"] for r in rows if supports(r["premise"], r["sentence"], threshold) != r["supported"]]
    return {"pairs": len(rows), "accuracy": round(1 - len(wrong) / len(rows), 4), "wrong": wrong}


def resolve_sets(config: dict, eval_set: str | None, splits: tuple[str, ...] = ("test",)) -> list[tuple[str, Path, Path, dict]]:
    """(name, set file, corpus folder, set config) for the configured sets of the given splits (sets without
    a split always run), or for one given file. A frozen test split whose sha256 changed is refused."""
    sets = []
    for name, conf in config["sets"].items():
        file = (DATA_DIR / conf["file"]).resolve()
        if conf.get("sha256") and file.exists() and hashlib.sha256(file.read_bytes()).hexdigest() != conf["sha256"]:
            raise UsageError(f"the frozen {conf.get('split', '')} split {conf['file']} has changed (its sha256 is "
                             "not the one in eval/config.toml): refusing to report it")
        sets.append((name, file, (DATA_DIR / conf["corpus"]).resolve(), conf))
    if eval_set is None:
        return [s for s in sets if s[3].get("split", "test") in splits]
    path = Path(eval_set).resolve()
    if not path.exists():
        raise NotFoundError(f"No such eval set: {eval_set}")
    for name, file, corpus, conf in sets:
        if file == path:
            return [(name, file, corpus, conf)]
    corpus = path.with_suffix("")  # a set beside a folder of the same name, else the default corpus
    return [(path.stem, path, corpus if corpus.is_dir() else (DATA_DIR / "../../seeds").resolve(), {})]


def guard_counts(answers: list[dict]) -> dict:
    """What the grounding guard did to generated answers: sentences written and removed, answers that fell back."""
    written = sum(len(a.get("sentences", [])) for a in answers)
    removed = sum(not s["kept"] for a in answers for s in a.get("sentences", []))
    fallbacks = sum(a.get("generator", "").startswith("extractive (fallback: ") for a in answers)
    return {"sentences_generated": written, "sentences_removed": removed,
            "removed_share": round(removed / written, 4) if written else None, "fallbacks": fallbacks}


def run_set(settings: Settings, name: str, set_file: Path, corpus: Path, baselines: bool, k: int,
            threshold: float, log, llm=None, exact_quotes: bool = True) -> dict:
    items = load_set(set_file)
    if not items:
        raise UsageError(f"{set_file} holds no items")
    set_settings = settings.with_(corpus=corpus, index_dir=settings.index_dir / "eval" / corpus.name)
    report = build_index(set_settings, corpus)
    log(f"[{name}] {len(items)} items over {corpus.name}/ ({report.chunks} chunks)")
    qa = QA(set_settings, build_if_missing=False)
    texts = {s: qa.index.document_text(s) for s in qa.index.sources()}
    results = {}
    for system_name, system in all_systems(qa, baselines, llm).items():
        scores, answers = [], []
        for item in items:
            t0 = time.perf_counter()
            answer = system(item.question, [list(h) for h in item.history])
            scores.append(score_item(item, answer, texts, k, threshold, (time.perf_counter() - t0) * 1000,
                                     exact_quotes))
            answers.append(answer)
        types = sorted({s.type for s in scores})
        results[system_name] = {
            "overall": aggregate(scores),
            "by_type": {t: aggregate([s for s in scores if s.type == t]) for t in types},
            "items": [asdict(s) for s in scores],
        }
        if llm is not None and system_name.startswith(llm.name):
            guarded = results[system_name]["guard"] = guard_counts(answers)
            log(f"  {system_name}: the guard removed {guarded['sentences_removed']} of "
                f"{guarded['sentences_generated']} generated sentences; {guarded['fallbacks']} answers fell back")
        log(f"  {system_name}: correctness {results[system_name]['overall']['correctness']}")
    paraphrased = [item for item in items if item.paraphrase]
    if paraphrased:  # the same questions in a second wording, sharing few words with the text
        system = all_systems(qa, False)["ours (hybrid)"]
        scores = [score_item(item, system(item.paraphrase, [list(h) for h in item.history]), texts, k, threshold, 0.0,
                             exact_quotes) for item in paraphrased]
        results["ours (hybrid)"]["paraphrase"] = aggregate(scores)
        log(f"  ours (hybrid), paraphrased: correctness {results['ours (hybrid)']['paraphrase']['correctness']}")
    return {"set": set_file.name, "corpus": str(corpus), "items": len(items), "systems": results}


def check(metrics: dict, bounds: dict) -> list[str]:
    """Names of the bounds the metrics miss; a key ending in _max is an upper bound."""
    missed = []
    for key, bound in bounds.items():
        metric = key.removesuffix("_max")
        value = metrics.get(metric)
        ok = value is not None and (value <= bound if key.endswith("_max") else value >= bound)
        if not ok:
            missed.append(f"{metric} = {value} ({'<=' if key.endswith('_max') else '>='} {bound})")
    return missed


def regressions(runs: dict, baseline_path: Path, tolerance: float) -> list[str]:
    """Gated metrics that fell more than tolerance below the committed baseline report."""
    if not baseline_path.exists():
        return []
    baseline = json.loads(baseline_path.read_text())["runs"]
    out = []
    for name, run in runs.items():
        if name not in baseline:
            continue
        old = baseline[name]["systems"]["ours (hybrid)"]["overall"]
        new = run["systems"]["ours (hybrid)"]["overall"]
        for metric in GATED:
            before, after = old.get(metric), new.get(metric)
            if before is None or after is None:
                continue
            worse = after > before + tolerance if metric == "false_abstention" else after < before - tolerance
            if worse:
                out.append(f"{name}: {metric} regressed {before} -> {after}")
    return out


GATED = ["hit@k", "correctness", "citation_precision", "support", "abstention_recall", "false_abstention"]


DEFAULT_OUT = "eval-reports"
BASELINE = EVAL_DIR / "reports" / "baseline.json"


def main(settings: Settings, eval_set: str | None = None, baselines: bool = False, out: str | None = None,
         splits: tuple[str, ...] = ("test",), llm=None) -> int:
    """Run the eval; with llm (a qa.llm.LLM) its guarded answers are one more system, with the guard's counts."""
    # A user's run never rewrites the committed reports (eval/reports/latest.*): those are regenerated on purpose,
    # with --out eval/reports. The default folder is in the working directory and git-ignored.
    out_dir = Path(out) if out else Path(DEFAULT_OUT)
    try:  # before the run, not after minutes of it
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: {exc.strerror}") from None
    config = load_config()
    threshold = config["judge"]["support_threshold"]
    k = config["retrieval"]["k"]
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    sets = resolve_sets(config, eval_set, splits)
    judge = judge_accuracy(threshold)
    log(f"support judge: {judge['accuracy']:.1%} on {judge['pairs']} hand-labelled pairs")
    runs = {}
    for name, set_file, corpus, conf in sets:
        run = run_set(settings, name, set_file, corpus, baselines, k, threshold, log, llm,
                      conf.get("exact_quotes", True))
        ours = run["systems"]["ours (hybrid)"]["overall"]
        run["floors_missed"] = check(ours, conf.get("floors", {}))
        run["targets_missed"] = check(ours, conf.get("targets", {}))
        runs[name] = run
    result = {"judge": judge, "k": k, "support_threshold": threshold, "runs": runs}
    if llm is not None:
        result["llm"] = llm.name
    table = write_reports(result, out_dir)
    print(table)
    failed = [f"floor missed: {name}: {m}" for name, run in runs.items() for m in run["floors_missed"]]
    compared = eval_set is None and splits == ("test",)  # the baseline report covers the default sets
    if compared:
        failed += regressions(runs, BASELINE, config["regression_tolerance"])
    for line in failed:
        print(f"FAIL {line}", file=sys.stderr)
    print(f"Reports: {out_dir / 'latest.md'} (also latest.json, latest.png)")
    checked = "floors" + (f", and no regression beyond {config['regression_tolerance']} against "
                          f"{BASELINE.relative_to(EVAL_DIR.parent)}" if compared else "; no baseline for these sets")
    print(f"Gate: FAILED, {len(failed)} problem{'s' if len(failed) != 1 else ''} above ({checked})" if failed
          else f"Gate: passed ({checked})")
    return 1 if failed else 0
