"""PDF indexing speed in pages per second: `qa index` against the tutorial pipeline, on the same PDFs, in one run.

The corpus is every PDF of the blind PDF sets (eval/data/blind2/pdf-*/: papers, specifications, slides, manuals).
The tutorial pipeline is what LangChain's PDF tutorial builds: PyPDFLoader (one Document per page, pypdf's
`page.extract_text()`; langchain-community is not a dependency here, so its two lines are written out), then
RecursiveCharacterTextSplitter(1000, 200), HuggingFaceEmbeddings (sentence-transformers, the same model) and Chroma.
Each side runs in a fresh process with a fresh store, alternating, --runs times; medians are compared.

Run: .venv/bin/python bench/pdf_pages.py [--runs 3]   (writes bench/results/pdf-pages.json and .md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serving import TUTORIAL_STORE  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"

TUTORIAL = r"""
import sys
from pathlib import Path
from pypdf import PdfReader
from langchain_core.documents import Document
corpus, store_dir = Path(sys.argv[1]), sys.argv[2]
docs = [Document(page_content=page.extract_text(), metadata={"source": p.name, "page": n})  # PyPDFLoader
        for p in sorted(corpus.glob("*.pdf")) for n, page in enumerate(PdfReader(p).pages)]
""" + TUTORIAL_STORE + r"""
print(len(chunks))
"""


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from pypdf import PdfReader

    work = Path(tempfile.mkdtemp(prefix="pdf-pages-"))
    corpus = work / "pdfs"
    corpus.mkdir()
    for pdf in sorted((ROOT / "eval" / "data" / "blind2").glob("pdf-*/*.pdf")):
        shutil.copy(pdf, corpus / pdf.name)
    pages = sum(len(PdfReader(p).pages) for p in corpus.glob("*.pdf"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_CORPUS": str(corpus)}
    ours, tutorial = [], []
    for run in range(args.runs):
        seconds, _ = timed([sys.executable, "-m", "qa", "index"], {**env, "QA_INDEX_DIR": str(work / f"ix{run}")})
        ours.append(seconds)
        seconds, _ = timed([sys.executable, "-c", TUTORIAL, str(corpus), str(work / f"tut{run}")], env)
        tutorial.append(seconds)
        print(f"run {run}: qa index {ours[-1]:.1f} s, tutorial {tutorial[-1]:.1f} s", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    ours_s, tutorial_s = statistics.median(ours), statistics.median(tutorial)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {"pdfs": len(list((ROOT / "eval" / "data" / "blind2").glob("pdf-*/*.pdf"))), "pages": pages,
              "qa_index_s": [round(s, 2) for s in ours], "tutorial_s": [round(s, 2) for s in tutorial],
              "qa_pages_per_s": round(pages / ours_s, 2), "tutorial_pages_per_s": round(pages / tutorial_s, 2),
              "ratio": round(tutorial_s / ours_s, 2), "commit": commit.strip(), "load_before": os.getloadavg()[0],
              "cpus": os.cpu_count()}
    OUT.mkdir(exist_ok=True)
    (OUT / "pdf-pages.json").write_text(json.dumps(result, indent=1) + "\n")
    (OUT / "pdf-pages.md").write_text(
        "# PDF indexing: pages per second against the tutorial pipeline\n\n"
        f"`.venv/bin/python bench/pdf_pages.py --runs {args.runs}` at commit {result['commit']}, {result['cpus']} "
        f"cores, load {result['load_before']:.2f} at the start. {result['pdfs']} PDFs, {pages} pages (the blind "
        "PDF sets). Fresh process and fresh store each run, alternating; medians.\n\n"
        "| pipeline | runs (s) | pages/s |\n|---|---|---|\n"
        f"| `qa index` | {', '.join(map(str, result['qa_index_s']))} | {result['qa_pages_per_s']} |\n"
        f"| tutorial (PyPDFLoader, 1000/200 splitter, HuggingFaceEmbeddings, Chroma) | "
        f"{', '.join(map(str, result['tutorial_s']))} | {result['tutorial_pages_per_s']} |\n\n"
        f"Ratio (ours / tutorial pages per second): **{result['ratio']}x**.\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
