"""Indexing and answering at scale on real text, with the real model, against the tutorial pipeline.

A corpus of real documents (what Debian's /usr/share/doc and the installed Python packages ship:
READMEs, NEWS, FAQs, changelogs, Markdown and HTML docs), plus planted-fact reports whose answers
are known, is grown to each size in chunks. For each size, in one run:

- `qa index` (a fresh process): wall time, chunks/s, input KB/s, peak RSS; an unchanged re-index;
- `qa serve`: warm REST p50/p95 over the planted questions; a cold `qa ask`;
- planted facts: hit@5 (a retrieved passage holds the fact) and correctness (the value is in the answer);
- the tutorial LangChain pipeline on the same folder: RecursiveCharacterTextSplitter(1000, 200),
  HuggingFaceEmbeddings (sentence-transformers, the same model), Chroma, batched adds; its index time,
  KB/s and query p50; the KB/s ratio is the comparison that matters (same machine, same run);
- optionally the same `qa index` and REST queries against a Chroma server started with `chroma run`.

Run: .venv/bin/python bench/scale.py --sizes 1000,10000 [--tutorial-max 10000] [--chroma-server 10000]
Writes bench/results/scale.json and bench/results/scale.md (--out-name NAME: NAME.json and NAME.md).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serving import TUTORIAL_STORE, free_port, start_qa_server  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
TEXT_NAMES = re.compile(r"(readme|news|faq|changelog|changes|history|todo|authors|thanks|install|usage|"
                        r"\.txt$|\.md$|\.rst$|\.html?$)", re.I)


def real_documents() -> list[tuple[str, bytes]]:
    """(name, bytes) of every real text document on this machine, in a fixed shuffled order."""
    roots = [Path("/usr/share/doc"), ROOT / ".venv/lib/python3.11/site-packages"]
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name in ("copyright",) or "licen" in path.name.lower():
                continue
            name = path.name[:-3] if path.name.endswith(".gz") else path.name
            if not TEXT_NAMES.search(name) and path.parent.name != "doc":
                continue
            try:
                data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
                data.decode("utf-8")
            except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
                continue
            if 2_000 <= len(data) <= 2_000_000 and b"\x00" not in data:
                suffix = Path(name).suffix.lower()
                suffix = suffix if suffix in (".md", ".html", ".htm") else ".txt"
                found.append((f"{path.relative_to(root).parent.as_posix().replace('/', '_')}_{Path(name).stem}"
                              f"{suffix}", data))
    random.Random(3).shuffle(found)
    return found


PLACES = ["Arden", "Bexley", "Corran", "Dunmore", "Elstow", "Farrow", "Glenby", "Harlow", "Ilsworth", "Jarrow"]
THINGS = ["observatory", "reservoir", "lighthouse", "granary", "foundry", "ferry terminal", "museum", "quarry"]


def planted_facts(n: int) -> tuple[list[tuple[str, str]], list[dict]]:
    """n short reports, each with one fact whose answer is a number nobody else states."""
    rng = random.Random(11)
    docs, questions = [], []
    for i in range(n):
        place, thing = PLACES[i % len(PLACES)], THINGS[(i // len(PLACES)) % len(THINGS)]
        name = f"{place} {thing} {i}"
        value = str(rng.randint(1000, 99999))
        text = (f"Annual report of the {name}\n\n"
                f"The {name} was inspected in spring and its records were reviewed by the county board.\n\n"
                f"In the last year the {name} recorded {value} visitors, according to the board.\n\n"
                f"The board thanked the staff of the {name} for their work.\n")
        docs.append((f"planted_{i:04d}.txt", text))
        questions.append({"question": f"How many visitors did the {name} record last year?", "answer": value,
                          "source": f"planted_{i:04d}.txt"})
    return docs, questions


def build_corpus(folder: Path, chunks: int, n_planted: int = 50) -> tuple[int, list[dict]]:
    """Real documents copied until the indexer's own chunker counts `chunks` distinct chunk texts (the indexer
    stores identical texts once; a fixed characters-per-chunk guess overshot, as this text averages 100-140
    characters a chunk depending on the mix), then the planted facts."""
    from index.build import text_hash
    from index.chunk import chunk_document
    from index.load import Document, read_document

    folder.mkdir(parents=True)
    total = 0
    seen: set[str] = set()
    for name, data in real_documents():
        if len(seen) >= chunks:
            break
        (folder / name).write_bytes(data)
        document, _ = read_document(folder / name, name)
        if not isinstance(document, Document):  # the indexer skips it too (say, a page without text)
            continue
        seen.update(text_hash(c.text) for c in chunk_document(document))
        total += len(data)
    docs, questions = planted_facts(n_planted)
    for name, text in docs:
        (folder / name).write_text(text, encoding="utf-8")
        total += len(text.encode())
    return total, questions


def run(cmd: list[str], env: dict, timeout: int = 7200) -> tuple[float, str]:
    """(seconds, stdout) of a command that must succeed."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{cmd} failed: {done.stderr[-800:]}")
    return time.perf_counter() - t0, done.stdout


def peak_child_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def serve_and_query(env: dict, questions: list[dict]) -> dict:
    server, url = start_qa_server(env)
    try:
        with httpx.Client(timeout=60) as http:
            http.post(url + "/api/ask", json={"question": "warm up"})
            latencies, hits, correct = [], 0, 0
            for q in questions:
                t0 = time.perf_counter()
                body = http.post(url + "/api/ask", json={"question": q["question"], "k": 5}).json()
                latencies.append((time.perf_counter() - t0) * 1000)
                hits += any(p["source"] == q["source"] and q["answer"] in p["text"] for p in body["passages"])
                correct += (not body["abstained"]) and q["answer"] in body["answer"]
        rss = int(Path(f"/proc/{server.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
    finally:
        server.terminate()
        server.wait(timeout=60)
    lat = sorted(latencies)
    return {"rest_p50_ms": round(statistics.median(lat), 1), "rest_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
            "planted_hit_at_5": round(hits / len(questions), 3), "planted_correct": round(correct / len(questions), 3),
            "server_rss_mb": round(rss, 1)}


TUTORIAL = r"""
import json, sys, time
from pathlib import Path
from langchain_core.documents import Document
corpus, store_dir = Path(sys.argv[1]), sys.argv[2]
questions = json.loads(Path(sys.argv[3]).read_text())
t0 = time.perf_counter()
docs = [Document(page_content=p.read_text(encoding="utf-8", errors="replace"), metadata={"source": p.name})
        for p in sorted(corpus.iterdir())]
""" + TUTORIAL_STORE + r"""
index_s = time.perf_counter() - t0
lat, hits = [], 0
for q in questions:
    t1 = time.perf_counter()
    found = store.similarity_search(q["question"], k=5)
    lat.append((time.perf_counter() - t1) * 1000)
    hits += any(d.metadata["source"] == q["source"] and q["answer"] in d.page_content for d in found)
lat.sort()
print(json.dumps({"index_s": index_s, "chunks": len(chunks), "query_p50_ms": lat[len(lat) // 2],
                  "planted_hit_at_5": hits / len(questions)}))
"""


def bench_size(size: int, tutorial: bool, chroma_port: int | None, work: Path) -> dict:
    corpus = work / f"corpus-{size}"
    nbytes, questions = build_corpus(corpus, size)
    env = {**os.environ, "QA_CORPUS": str(corpus), "QA_INDEX_DIR": str(work / f"index-{size}"),
           "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    if chroma_port:
        env.update(CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(chroma_port))
    seconds, out = run([sys.executable, "-m", "qa", "index"], env)
    chunks = int(re.search(r"(\d+) chunks \(", out).group(1))
    result = {"size": size, "chroma_server": bool(chroma_port), "input_mb": round(nbytes / 1e6, 2),
              "files": len(list(corpus.iterdir())), "chunks": chunks, "index_s": round(seconds, 1),
              "chunks_per_s": round(chunks / seconds, 1), "input_kb_per_s": round(nbytes / 1000 / seconds, 1),
              "index_peak_rss_mb": round(peak_child_rss_mb(), 1)}
    result["reindex_unchanged_s"] = round(run([sys.executable, "-m", "qa", "index"], env)[0], 2)
    result.update(serve_and_query(env, questions))
    result["cold_qa_ask_s"] = round(statistics.median(
        run([sys.executable, "-m", "qa", "ask", questions[0]["question"]], env)[0] for _ in range(3)), 2)
    print(json.dumps(result), flush=True)
    if tutorial:
        qfile = work / f"questions-{size}.json"
        qfile.write_text(json.dumps(questions))
        seconds, out = run([sys.executable, "-c", TUTORIAL, str(corpus), str(work / f"tutorial-{size}"), str(qfile)],
                           {**os.environ, "HF_HUB_OFFLINE": "1"})
        t = json.loads(out.strip().splitlines()[-1])
        result["tutorial"] = {"index_s": round(t["index_s"], 1), "chunks": t["chunks"],
                              "input_kb_per_s": round(nbytes / 1000 / t["index_s"], 1),
                              "query_p50_ms": round(t["query_p50_ms"], 1),
                              "planted_hit_at_5": round(t["planted_hit_at_5"], 3)}
        result["kb_per_s_ratio_vs_tutorial"] = round(result["input_kb_per_s"] / result["tutorial"]["input_kb_per_s"], 2)
        print(json.dumps(result["tutorial"]), flush=True)
    shutil.rmtree(work / f"tutorial-{size}", ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000", help="corpus sizes in chunks (approximate)")
    parser.add_argument("--tutorial-max", type=int, default=100_000, help="run the tutorial pipeline up to this size")
    parser.add_argument("--chroma-server", type=int, default=0, help="also run this size against `chroma run`")
    parser.add_argument("--out-name", default="scale", help="write bench/results/NAME.json and NAME.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qa-scale-"))
    results = {"machine_cpus": os.cpu_count(), "runs": []}
    try:
        for size in [int(s) for s in args.sizes.split(",") if s]:
            results["runs"].append(bench_size(size, size <= args.tutorial_max, None, work))
        if args.chroma_server:
            port = free_port()
            chroma = subprocess.Popen([str(ROOT / ".venv/bin/chroma"), "run", "--path", str(work / "chroma-server"),
                                       "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(120):
                    try:
                        httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
                        break
                    except httpx.HTTPError:
                        time.sleep(0.5)
                shutil.rmtree(work / f"corpus-{args.chroma_server}", ignore_errors=True)
                results["runs"].append(bench_size(args.chroma_server, False, port, work / "server"))
            finally:
                chroma.terminate()
                chroma.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.out_name}.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# Scale benchmark (`bench/scale.py`)", "",
             f"{results['machine_cpus']} CPUs; real text from /usr/share/doc and installed packages plus 50 "
             "planted-fact reports; the real model (ONNX Runtime for `qa index`).", "",
             "| chunks | store | input MB | index s | chunks/s | KB/s | tutorial KB/s | ratio | peak RSS MB (index) "
             "| re-index unchanged s | REST p50 / p95 ms | server RSS MB | cold ask s | planted hit@5 | planted correct |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        t = r.get("tutorial", {})
        lines.append(f"| {r['chunks']} | {'Chroma server' if r['chroma_server'] else 'local'} | {r['input_mb']} | "
                     f"{r['index_s']} | {r['chunks_per_s']} | {r['input_kb_per_s']} | {t.get('input_kb_per_s', '-')} | "
                     f"{r.get('kb_per_s_ratio_vs_tutorial', '-')} | {r['index_peak_rss_mb']} | "
                     f"{r['reindex_unchanged_s']} | {r['rest_p50_ms']} / {r['rest_p95_ms']} | {r['server_rss_mb']} | "
                     f"{r['cold_qa_ask_s']} | {r['planted_hit_at_5']} | {r['planted_correct']} |")
    tutorial_rows = [r for r in results["runs"] if "tutorial" in r]
    if tutorial_rows:
        lines += ["", "Tutorial pipeline on the same folders: " + "; ".join(
            f"{r['tutorial']['chunks']} chunks in {r['tutorial']['index_s']} s, query p50 "
            f"{r['tutorial']['query_p50_ms']} ms, planted hit@5 {r['tutorial']['planted_hit_at_5']}"
            for r in tutorial_rows) + "."]
    (OUT / f"{args.out_name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
