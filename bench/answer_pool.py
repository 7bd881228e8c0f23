"""Warm answer latency by how many passages the answer is selected from (qa.engine.ANSWER_POOL), in one process.

Run: .venv/bin/python bench/answer_pool.py [--rounds 3]
Writes bench/results/answer-pool.json and .md: p50/p95 of QA.ask over the reference questions (seeds/), the
pool sizes alternating round by round so that both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.metrics import load_set
from index.config import load_settings
from qa import engine

OUT = ROOT / "bench" / "results"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pools", type=int, nargs="+", default=[5, 10])
    args = parser.parse_args()
    settings = load_settings()
    settings = settings.with_(corpus=ROOT / "seeds", index_dir=settings.index_dir / "bench" / "seeds")
    qa = engine.QA(settings)
    questions = [i.question for i in load_set(ROOT / "eval" / "data" / "reference.jsonl") if not i.history]
    for question in questions:  # warm: model, index, caches
        qa.ask(question)
    times: dict[int, list[float]] = {pool: [] for pool in args.pools}
    default = engine.ANSWER_POOL
    for _ in range(args.rounds):
        for pool in args.pools:
            engine.ANSWER_POOL = pool
            for question in questions:
                t0 = time.perf_counter()
                qa.ask(question)
                times[pool].append((time.perf_counter() - t0) * 1000)
    engine.ANSWER_POOL = default
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout
    rows = {pool: {"p50_ms": round(statistics.median(t), 1), "p95_ms": round(sorted(t)[int(0.95 * len(t))], 1),
                   "asks": len(t)} for pool, t in times.items()}
    result = {"commit": commit.strip(), "questions": len(questions), "rounds": args.rounds, "default": default,
              "pools": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / "answer-pool.json").write_text(json.dumps(result, indent=1) + "\n")
    header = (f"{len(questions)} reference questions over seeds/, {args.rounds} rounds, one process; default "
              f"ANSWER_POOL = {default}.")
    lines = [f"# Warm answer latency by answer pool (commit {result['commit']})", "", header, "",
             "| passages | p50 ms | p95 ms | asks |", "|---|---|---|---|"]
    lines += [f"| {pool} | {r['p50_ms']} | {r['p95_ms']} | {r['asks']} |" for pool, r in rows.items()]
    (OUT / "answer-pool.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
