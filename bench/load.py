"""Load test of `qa serve` on loopback: throughput by client count, /healthz under load, memory, and a
full `qa index --rebuild` in the middle of the heaviest phase.

Run: .venv/bin/python bench/load.py [--requests 10000] [--clients 50]
Writes bench/results/load.json and bench/results/load.md. Bounded: loopback only, a fixed request count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serving import start_qa_server  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"
TEMPLATES = ["What did the report say about {a} and {b}?", "Who was involved with {a} in {b}?",
             "When did {a} happen near {b}?", "How many {a} were linked to {b}?", "Why did {a} affect {b}?",
             "Which {a} was mentioned with {b}?", "Where was the {a} of {b}?", "What happened to {a} after {b}?"]


def unique_questions(corpus: Path, n: int, seed: int = 1) -> list[str]:
    """n distinct questions built from the corpus's own words (so retrieval does real work)."""
    words = sorted({w for f in corpus.glob("*.txt") for w in re.findall(r"[A-Za-z]{4,}", f.read_text("utf-8"))})
    rng, out = random.Random(seed), set()
    while len(out) < n:
        out.add(rng.choice(TEMPLATES).format(a=rng.choice(words), b=rng.choice(words)))
    return sorted(out)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else float("nan")


async def load(url: str, questions: list[str], clients: int, total: int, during=None) -> dict:
    """total requests from `clients` concurrent clients; `during(done_counter)` runs alongside."""
    latencies, failures, done = [], [], [0]
    health: list[float] = []
    finished = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> None:
        while done[0] < total:
            i = done[0]
            done[0] += 1
            t0 = time.perf_counter()
            try:
                r = await http.post(url + "/api/ask", json={"question": questions[i % len(questions)]})
                ok = r.status_code == 200
                detail = r.text[:200]
            except httpx.HTTPError as exc:
                ok, detail = False, repr(exc)
            latencies.append((time.perf_counter() - t0) * 1000)
            if not ok:
                failures.append(detail)

    async def probe_health() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            while not finished.is_set():
                t0 = time.perf_counter()
                r = await http.get(url + "/healthz")
                health.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    failures.append(f"healthz {r.status_code}")
                await asyncio.sleep(0.1)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        prober = asyncio.create_task(probe_health())
        side = asyncio.create_task(during(done)) if during else None
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - t0
        finished.set()
        await prober
        side_result = await side if side else None
    return {"clients": clients, "requests": len(latencies), "errors": len(failures), "first_errors": failures[:3],
            "req_per_s": round(len(latencies) / seconds, 1), "p50_ms": pct(latencies, 0.5),
            "p95_ms": pct(latencies, 0.95), "p99_ms": pct(latencies, 0.99),
            "healthz_p50_ms": pct(health, 0.5), "healthz_p95_ms": pct(health, 0.95),
            "healthz_max_ms": pct(health, 1.0), "healthz_probes": len(health), "side": side_result}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--unique", type=int, default=2_000)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="qa-load-"))
    corpus = ROOT / "seeds"
    env = {**os.environ, "QA_CORPUS": str(corpus), "QA_INDEX_DIR": str(tmp / "index"), "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    subprocess.run([sys.executable, "-m", "qa", "index"], env=env, cwd=ROOT, check=True, capture_output=True)
    server, url = start_qa_server(env)
    try:
        questions = unique_questions(corpus, args.unique)
        results = {"machine_cpus": os.cpu_count(), "unique_questions": len(questions)}
        asyncio.run(load(url, questions[::-1], 8, 200))  # warm-up: model, caches, connections
        for clients, total in ((1, 300), (4, 1000)):
            results[f"clients_{clients}"] = asyncio.run(load(url, questions, clients, total))
            print(json.dumps(results[f"clients_{clients}"]), flush=True)

        async def rebuild_when_busy(done) -> dict:
            while done[0] < args.requests // 5:
                await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "qa", "index", "--rebuild", env=env, cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            return {"rebuild_rc": proc.returncode, "rebuild_s": round(time.perf_counter() - t0, 1),
                    "rebuild_started_at_request": args.requests // 5, "rebuild_stderr": err.decode()[-300:]}

        rss_before = rss_mb(server.pid)
        heavy = asyncio.run(load(url, questions, args.clients, args.requests, during=rebuild_when_busy))
        heavy["rss_before_mb"], heavy["rss_after_mb"] = round(rss_before, 1), round(rss_mb(server.pid), 1)
        heavy["rss_growth_mb"] = round(heavy["rss_after_mb"] - heavy["rss_before_mb"], 1)
        results[f"clients_{args.clients}_with_rebuild"] = heavy
        print(json.dumps(heavy), flush=True)
        results["throughput_ratio_50_vs_4_clients"] = round(heavy["req_per_s"] / results["clients_4"]["req_per_s"], 2)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(json.dumps(results, indent=1) + "\n")
    h = results[f"clients_{args.clients}_with_rebuild"]
    lines = ["# Load test (`bench/load.py`)", "",
             f"{results['machine_cpus']} CPUs, loopback, seeds/ index, {results['unique_questions']} unique questions.",
             "", "| clients | requests | errors | req/s | p50 ms | p95 ms | /healthz p95 ms |", "|---|---|---|---|---|---|---|"]
    for key in ("clients_1", "clients_4", f"clients_{args.clients}_with_rebuild"):
        r = results[key]
        lines.append(f"| {r['clients']}{' (+ full rebuild)' if 'rebuild' in key else ''} | {r['requests']} | "
                     f"{r['errors']} | {r['req_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['healthz_p95_ms']} |")
    lines += ["", f"- `qa index --rebuild` during the {args.clients}-client phase: exit {h['side']['rebuild_rc']}, "
                  f"{h['side']['rebuild_s']} s, {h['errors']} failed requests.",
              f"- Server RSS over the {h['requests']} requests: {h['rss_before_mb']} -> {h['rss_after_mb']} MB "
              f"({h['rss_growth_mb']:+} MB).",
              f"- Throughput at {args.clients} clients vs 4: {results['throughput_ratio_50_vs_4_clients']}x."]
    (OUT / "load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
