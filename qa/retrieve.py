"""Hybrid retrieval: Chroma (dense) and BM25 (lexical) fused by reciprocal rank."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Iterable

import numpy as np

from index.chunk import line_number
from index.config import Settings
from index.embed import embed_query, model_path
from index.errors import NotFoundError
from index.lexical import BM25_B, BM25_K1, bm25_idf, terms
from index.store import (open_collection, open_side_store, read_meta, read_vector_copy, side_store_path,
                         unpack_postings, unpack_vectors)

from .types import Passage

RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of top ranks
MODES = ("hybrid", "dense", "lexical")


def fuse_rankings(rankings: Iterable[list[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(id) = sum over rankings of 1 / (k + rank)."""
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] += 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class CorpusIndex:
    """Everything answering reads from the index, opened once and reused for every question.

    Dense search goes to Chroma. With fast_start=True (the one-shot `qa ask`), it reads
    the exact copy of the vectors that `qa index` writes beside the side store instead,
    because importing chromadb alone costs a cold process about a second; it falls back
    to Chroma when that copy is missing or from another index generation.
    """

    def __init__(self, settings: Settings, fast_start: bool = False):
        self.settings = settings
        self.fast_start = fast_start and not settings.chroma_host
        self._vector_copy = None
        self.db = open_side_store(side_store_path(settings.index_dir))
        self.meta = read_meta(self.db)
        self.model = model_path(settings.embed_model)
        self.n_chunks = int(self.meta.get("n_chunks", 0))
        self.avg_terms = float(self.meta.get("avg_terms", 1.0))
        self._collection = None
        self._doc_cache: dict[str, str] = {}
        self._lock = threading.Lock()  # sqlite connection shared by server threads

    @property
    def collection(self):
        if self._collection is None:
            self._collection = open_collection(self.settings, self.meta["collection"])
        return self._collection

    # -- documents -------------------------------------------------------------------------
    def sources(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self.db.execute("SELECT source FROM documents ORDER BY source")]

    def document_text(self, source: str) -> str:
        """Canonical text of an indexed source; NotFoundError for anything else (never a path lookup)."""
        if source not in self._doc_cache:
            with self._lock:
                row = self.db.execute("SELECT text FROM documents WHERE source=?", (source,)).fetchone()
            if row is None:
                raise NotFoundError(f"Unknown source: {source!r} (see `qa source --list`)")
            self._doc_cache[source] = row[0]
        return self._doc_cache[source]

    def document_frequency(self, term: str) -> int:
        with self._lock:
            row = self.db.execute("SELECT df FROM postings WHERE term=?", (term,)).fetchone()
        return row[0] if row else 0

    def passages(self, chunk_ids: list[str]) -> dict[str, Passage]:
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = self.db.execute(
                f'SELECT chunk_id, source, start, "end", text FROM chunks WHERE chunk_id IN ({marks})', chunk_ids).fetchall()
        return {cid: Passage(cid, src, s, e, text, line_number(self.document_text(src), s), 0.0)
                for cid, src, s, e, text in rows}

    # -- search ----------------------------------------------------------------------------
    def embed(self, text: str) -> np.ndarray:
        return embed_query(self.model, text)

    def sentence_vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        """Vectors of each chunk's sentences (stored at index time), for sentence-level similarity."""
        marks = ",".join("?" * len(chunk_ids))
        dim = int(self.meta.get("dim", 384))
        with self._lock:
            rows = self.db.execute(f"SELECT chunk_id, sentence_vectors FROM chunks WHERE chunk_id IN ({marks})",
                                   chunk_ids).fetchall()
        return {cid: unpack_vectors(blob, dim) for cid, blob in rows}

    def vector_copy(self):
        """(ids, vectors) from vectors.npy when it matches this index, else False."""
        if self._vector_copy is None:
            self._vector_copy = read_vector_copy(self.settings.index_dir, self.meta.get("generation", "")) or False
        return self._vector_copy

    def dense_search(self, query_vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """(chunk_id, cosine) of the n nearest chunks; vectors the side store does not know are ignored."""
        if self.n_chunks == 0:
            return []
        if self.fast_start and self.vector_copy():
            ids, vectors = self.vector_copy()
            scores = vectors @ query_vector  # unit vectors: dot product == cosine
            top = np.argpartition(-scores, min(n, len(ids)) - 1)[:n]
            return [(ids[i], float(scores[i])) for i in sorted(top, key=lambda i: -scores[i])]
        got = self.collection.query(query_embeddings=[query_vector.tolist()], n_results=min(n, self.n_chunks),
                                    include=["distances"])
        return [(cid, 1.0 - dist) for cid, dist in zip(got["ids"][0], got["distances"][0])]

    def lexical_search(self, query: str, n: int) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score) of the n best lexical matches (Okapi BM25, k1=1.2, b=0.75)."""
        k1, b = BM25_K1, BM25_B
        rows_all, scores_all = [], []
        with self._lock:
            for term in set(terms(query)):
                found = self.db.execute("SELECT data FROM postings WHERE term=?", (term,)).fetchone()
                if not found:
                    continue
                rows, tf, length = unpack_postings(found[0]).astype(np.float64)
                idf = bm25_idf(self.n_chunks, len(rows))
                rows_all.append(rows.astype(np.int64))
                scores_all.append(idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / max(self.avg_terms, 1e-9))))
            if not rows_all:
                return []
            rows, inverse = np.unique(np.concatenate(rows_all), return_inverse=True)
            totals = np.zeros(len(rows))
            np.add.at(totals, inverse, np.concatenate(scores_all))
            top = np.argsort(-totals, kind="stable")[:n]
            best = [(int(rows[i]), float(totals[i])) for i in top]
            ids = dict(self.db.execute(
                f"SELECT row, chunk_id FROM chunks WHERE row IN ({','.join('?' * len(best))})", [r for r, _ in best]))
        return [(ids[row], score) for row, score in best if row in ids]

    def search(self, query: str, k: int = 5, mode: str = "hybrid", pool: int = 30) -> list[Passage]:
        """The k best passages for query; mode is hybrid (RRF of both), dense or lexical.

        Each passage keeps the score of each side that ranked it (dense cosine, BM25), None where it did not.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        dense: dict[str, float] = {}
        lexical: dict[str, float] = {}
        rankings = []
        if mode in ("hybrid", "dense"):
            dense = dict(self.dense_search(self.embed(query), pool))
            rankings.append(list(dense))
        if mode in ("hybrid", "lexical"):
            lexical = dict(self.lexical_search(query, pool))
            rankings.append(list(lexical))
        fused = fuse_rankings(rankings)
        found = self.passages([cid for cid, _ in fused[: k + 10]])  # ids missing from the side store drop out
        top = [(cid, score) for cid, score in fused if cid in found][:k]
        return [Passage(**{**found[cid].__dict__, "score": score, "dense": dense.get(cid), "lexical": lexical.get(cid)})
                for cid, score in top]
