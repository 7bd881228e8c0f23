"""Chroma's HNSW search breadth (hnsw:search_ef) against exact search.

Run: .venv/bin/python bench/hnsw_ef.py synthetic        100k clustered unit vectors in two collections (search_ef
                                                         100 and 400): ms per query and recall@10 against exact
     .venv/bin/python bench/hnsw_ef.py builds CORPUS SET  build CORPUS's index twice (index/store.py's settings) and
                                                         count the SET questions whose dense top 30 differ between
                                                         the builds, and whose top 10 differ from exact search
Results: bench/results/hnsw-ef.md.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic(n: int = 100_000, queries: int = 200) -> None:
    import chromadb

    folder = Path(tempfile.mkdtemp(prefix="hnsw-ef-"))
    client = chromadb.PersistentClient(path=str(folder))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2000, 384))  # clustered: closer to text embeddings than uniform noise
    vectors = centres[rng.integers(0, 2000, n)] + 0.6 * rng.normal(size=(n, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    collections = {}
    for ef in (100, 400):
        collection = client.get_or_create_collection(f"ef{ef}", metadata={"hnsw:space": "cosine", "hnsw:search_ef": ef})
        for i in range(0, n, 5000):
            collection.add(ids=[str(j) for j in range(i, i + 5000)], embeddings=vectors[i:i + 5000])
        collections[ef] = collection
    q = vectors[rng.integers(0, n, queries)] + 0.3 * rng.normal(size=(queries, 384)).astype(np.float32)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    exact = np.argsort(-(q @ vectors.T), axis=1)[:, :10]
    for ef, collection in collections.items():
        t0 = time.perf_counter()
        got = [collection.query(query_embeddings=[x.tolist()], n_results=30)["ids"][0] for x in q]
        ms = (time.perf_counter() - t0) / queries * 1000
        recall = np.mean([len(set(map(int, g[:10])) & set(e)) / 10 for g, e in zip(got, exact)])
        print(f"search_ef {ef}: {ms:.2f} ms a query, recall@10 against exact {recall:.3f}")
    shutil.rmtree(folder, ignore_errors=True)


def builds(corpus: Path, question_file: Path) -> None:
    from index.build import build_index
    from index.config import load_settings
    from qa.retrieve import CorpusIndex

    questions = [json.loads(line)["question"] for line in question_file.read_text().splitlines()]
    runs = []
    for _ in range(2):
        settings = load_settings(corpus=corpus, index_dir=Path(tempfile.mkdtemp(prefix="hnsw-build-")))
        build_index(settings)
        index, exact_index = CorpusIndex(settings), CorpusIndex(settings, fast_start=True)  # Chroma; exact copy
        found = [[c for c, _ in index.dense_search(index.embed(q), 30)] for q in questions]
        exact = [[c for c, _ in exact_index.dense_search(exact_index.embed(q), 30)] for q in questions]
        same = sum(a[:10] == b[:10] for a, b in zip(found, exact))
        print(f"{index.n_chunks} chunks: top 10 as exact search for {same} of {len(questions)}")
        runs.append(found)
    print(f"dense top 30 differing between the two builds: {sum(a != b for a, b in zip(*runs))} of {len(questions)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["synthetic"]:
        synthetic()
    else:
        builds(Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve())
