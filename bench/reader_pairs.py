"""Reader pairs one after another on two intra-op threads (before) against side by side on one thread each
(after), warm, in one process, alternated question by question: the 65 reference questions over seeds/.

Run: .venv/bin/python bench/reader_pairs.py  (needs an index of seeds/: .venv/bin/qa index). Writes
bench/results/reader-pairs.md. Answers must be identical in both ways (each pair is still scored alone)."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import time

    import onnxruntime as ort

    from index.config import load_settings
    from qa import reader
    from qa.engine import QA

    questions = [json.loads(line)["question"] for line in (ROOT / "eval/data/reference.jsonl").read_text().splitlines()]
    qa = QA(load_settings(), build_if_missing=False)
    loaded = reader.get_reader()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    two_threads = ort.InferenceSession(str(reader.model_dir() / "model.onnx"), options,
                                       providers=["CPUExecutionProvider"])
    ways = {"before: one after another, 2 intra-op threads": (two_threads, 1),
            "after: side by side, 1 thread each": (loaded.session, reader.PARALLEL_PAIRS)}
    times = {name: [] for name in ways}
    answers = {name: [] for name in ways}
    for q in questions * 2:
        for name, (session, parallel) in ways.items():
            loaded.session, reader.PARALLEL_PAIRS = session, parallel
            qa.ask(q)  # warm this question's caches (retrieval, query vector) for both ways alike
            start = time.perf_counter()
            answer = qa.ask(q)
            times[name].append((time.perf_counter() - start) * 1000)
            answers[name].append(answer.answer)
    first, second = answers.values()
    lines = ["# Reader pairs: one after another vs side by side (`bench/reader_pairs.py`)", "",
             f"{len(questions)} reference questions twice, warm, in-process `QA.ask`, alternated; "
             f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end. Same answers: {first == second}.", "",
             "| way | p50 ms | p95 ms |", "|---|---|---|"]
    for name, values in times.items():
        ordered = sorted(values)
        lines.append(f"| {name} | {statistics.median(ordered):.0f} | {ordered[int(0.95 * (len(ordered) - 1))]:.0f} |")
    out = ROOT / "bench" / "results" / "reader-pairs.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
