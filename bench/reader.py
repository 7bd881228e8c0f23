"""What the reader costs (docs/reader.md): warm answer latency with and without it, cold `qa ask`, memory.

Run: .venv/bin/python bench/reader.py [--before PATH] [--runs N] [--rest]
  --before PATH   a checkout of the tree before the reader (git archive <commit> | tar -x -C PATH): cold `qa ask`
                  is timed there and here, alternated, so both see the same load.
Warm: the 65 reference questions over seeds/, each asked with and without the reader, alternated, in one process
(in-process QA.ask, not over REST). --rest: the same questions over REST to a `qa serve` started with the reader
and one without it (QA_READER_DIR pointing at an empty folder: the fallback), with the server's RSS.
Times on a shared machine are only compared as ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval/data/reference.jsonl").read_text().splitlines()]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered), 1), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1)}


def rest(index_dir: Path) -> dict:
    import httpx

    from bench.serving import start_qa_server

    def server_rss(pid: int) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    out = {}
    empty = tempfile.mkdtemp(prefix="no-reader-")
    for label, extra in (("without reader", {"QA_READER_DIR": empty}), ("with reader", {})):
        env = {**os.environ, "QA_CORPUS": str(ROOT / "seeds"), "QA_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": str(ROOT), **extra}
        server, url = start_qa_server(env)
        # One client, its connection kept alive, as a program calling the API would: a new httpx client per
        # request added about 20 ms of the client's own setup (its TLS context) to every answer measured.
        client = httpx.Client(base_url=url, timeout=120)
        try:
            ready = server_rss(server.pid)
            client.post("/api/ask", json={"question": "Who is the IPCC commissioner?"})
            lat = []
            for question in QUESTIONS:
                t0 = time.perf_counter()
                client.post("/api/ask", json={"question": question}).raise_for_status()
                lat.append((time.perf_counter() - t0) * 1000)
            out[label] = percentiles(lat) | {"rss_ready_mb": round(ready, 1),
                                             "rss_after_mb": round(server_rss(server.pid), 1)}
        finally:
            client.close()
            server.terminate()
            server.wait(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rest", action="store_true")
    args = parser.parse_args()
    from index.build import build_index
    from index.config import load_settings
    from index.embed import embed_query
    from qa import answer, engine
    from qa.engine import QA

    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-reader-"))
    settings = load_settings(corpus=ROOT / "seeds", index_dir=tmp / "index")
    build_index(settings)
    out: dict = {}
    if args.rest:
        out["rest"] = rest(settings.index_dir)
    if args.before:  # cold `qa ask`, before and after, alternated
        env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_CORPUS": str(ROOT / "seeds"),
               "HF_HUB_OFFLINE": "1"}
        cold = {"before": [], "after": []}
        for _ in range(args.runs):
            for label, tree in (("before", args.before), ("after", ROOT)):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "qa", "ask", "Which drug killed Daniel Whitworth?"], cwd=tree,
                               env={**env, "PYTHONPATH": str(tree)}, check=True, capture_output=True)
                cold[label].append(time.perf_counter() - t0)
        out["cold_qa_ask_s"] = {k: round(statistics.median(v), 3) for k, v in cold.items()}
        out["cold_ratio_after_before"] = round(statistics.median(cold["after"]) / statistics.median(cold["before"]), 2)

    qa = QA(settings, build_if_missing=False)
    assert answer.load_reader_selector(), "qa/reader.json is not installed"
    original = answer.load_reader_selector

    def use_reader(on: bool) -> None:  # without it, the engine neither loads nor asks the reader
        answer.load_reader_selector = engine.load_reader_selector = original if on else (lambda: None)

    use_reader(False)
    qa.ask(QUESTIONS[0])  # the index and the embedding model loaded, as in a running server, not the reader
    rss_before = rss_mb()
    use_reader(True)
    qa.ask(QUESTIONS[0])
    rss_after = rss_mb()
    lat = {"with reader": [], "without reader": []}
    for question in QUESTIONS:
        for label in ("with reader", "without reader"):
            use_reader(label == "with reader")
            embed_query.cache_clear()  # each question new to the process, as for a user
            t0 = time.perf_counter()
            qa.ask(question)
            lat[label].append((time.perf_counter() - t0) * 1000)
    use_reader(True)
    out["warm"] = {k: percentiles(v) for k, v in lat.items()}
    out["warm_p50_ratio"] = round(out["warm"]["with reader"]["p50_ms"] / out["warm"]["without reader"]["p50_ms"], 2)
    out["rss_growth_loading_reader_mb"] = round(rss_after - rss_before, 1)
    out["questions"] = len(QUESTIONS)
    out["load_average"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
