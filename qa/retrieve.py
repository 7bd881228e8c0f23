"""Hybrid retrieval: Chroma (dense) and BM25 (lexical) fused by reciprocal rank."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections import defaultdict
from pathlib import PurePosixPath
from typing import Iterable

import numpy as np

from index.chunk import line_number
from index.config import Settings
from index.embed import embed_query, model_path
from index.errors import IndexDamagedError, NotFoundError, QAError
from index.lexical import BM25_B, BM25_K1, bm25_idf, terms
from index.store import (VectorCopyDamaged, open_collection, open_side_store, read_meta, read_vector_copy,
                         side_store_path, unpack_postings, unpack_vectors)

from .question import analyse
from .request import MODES
from .types import Passage

RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of top ranks


NAMED_SHARE = 0.6  # share of a title's words a question must use to name that document
MAX_NAMED = 5


def fuse_rankings(rankings: Iterable[list[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(id) = sum over rankings of 1 / (k + rank)."""
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] += 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _file_id(path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


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
        self.notes: list[str] = []  # warnings for the user (a damaged fast-start copy)
        path = side_store_path(settings.index_dir)
        self.db = open_side_store(path)
        self._file_id = _file_id(path)  # taken after opening: a swap after this is seen by is_current()
        self._lock = threading.Lock()  # sqlite connection shared by server threads
        with self._lock:
            self._data_version = self._query("PRAGMA data_version")[0][0]
            self.meta = read_meta(self.db)
            self.n_documents = self._query("SELECT COUNT(*) FROM documents")[0][0]
        self.generation = self.meta["generation"]
        self.model = model_path(settings.embed_model)
        self.n_chunks = int(self.meta.get("n_chunks", 0))
        self.avg_terms = float(self.meta.get("avg_terms", 1.0))
        self._collection = None
        self._doc_cache: dict[str, str] = {}
        self._titles = None  # built on first use: see named_sources

    def _query(self, sql: str, params=()) -> list[tuple]:
        """Rows of one statement (the caller holds self._lock); a corrupted page is a damaged index, not a 500."""
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc):
                raise QAError("the index is busy being rewritten: try again in a moment") from exc
            raise IndexDamagedError(self.settings.index_dir, str(exc)) from exc

    def is_current(self) -> bool:
        """False once `qa index` has committed a change or moved a rebuilt store into place since opening."""
        if _file_id(side_store_path(self.settings.index_dir)) != self._file_id:
            return False
        with self._lock:
            try:
                return self.db.execute("PRAGMA data_version").fetchone()[0] == self._data_version
            except sqlite3.DatabaseError:
                return False

    @property
    def collection(self):
        if self._collection is None:
            # As of this generation: a client opened before `qa index` wrote it elsewhere does not see its vectors.
            # A superseded index (its question is asked again) does not replace the client the current one uses.
            generation = self.generation if self.is_current() else None
            self._collection = open_collection(self.settings, self.meta["collection"], generation=generation)
        return self._collection

    # -- documents -------------------------------------------------------------------------
    def sources(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._query("SELECT source FROM documents ORDER BY source")]

    def document_text(self, source: str) -> str:
        """Canonical text of an indexed source; NotFoundError for anything else (never a path lookup)."""
        if source not in self._doc_cache:
            with self._lock:
                rows = self._query("SELECT text FROM documents WHERE source=?", (source,))
            if not rows:
                raise NotFoundError(f"Unknown source: {source!r} (see `qa source --list`)")
            self._doc_cache[source] = rows[0][0]
        return self._doc_cache[source]

    def document_frequency(self, term: str) -> int:
        with self._lock:
            rows = self._query("SELECT df FROM postings WHERE term=?", (term,))
        return rows[0][0] if rows else 0

    def chunk_sources(self, chunk_ids: list[str]) -> dict[str, str]:
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            return dict(self._query(f"SELECT chunk_id, source FROM chunks WHERE chunk_id IN ({marks})", chunk_ids))

    def passages(self, chunk_ids: list[str]) -> dict[str, Passage]:
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = self._query(f'SELECT chunk_id, source, start, "end", text, headings, page, columns, is_table '
                               f"FROM chunks WHERE chunk_id IN ({marks})", chunk_ids)
        return {cid: Passage(cid, src, s, e, text, line_number(self.document_text(src), s), 0.0,
                             headings=headings, page=page, columns=columns, table=bool(table))
                for cid, src, s, e, text, headings, page, columns, table in rows}

    # -- search ----------------------------------------------------------------------------
    def embed(self, text: str) -> np.ndarray:
        return embed_query(self.model, text)

    def sentence_vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        """Vectors of each chunk's sentences (stored at index time), for sentence-level similarity."""
        marks = ",".join("?" * len(chunk_ids))
        dim = int(self.meta.get("dim", 384))
        with self._lock:
            rows = self._query(f"SELECT chunk_id, sentence_vectors FROM chunks WHERE chunk_id IN ({marks})",
                               chunk_ids)
        return {cid: unpack_vectors(blob, dim) for cid, blob in rows}

    def vector_copy(self):
        """(ids, vectors) from vectors.npy when it matches this index, else False."""
        if self._vector_copy is None:
            try:
                self._vector_copy = read_vector_copy(self.settings.index_dir, self.meta) or False
            except VectorCopyDamaged as exc:
                self.notes.append(f"{exc}; searching Chroma instead (qa index rewrites the copy)")
                self._vector_copy = False
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
            for term in sorted(set(terms(query))):  # one order: a float sum in hash order differed run to run
                found = self._query("SELECT data FROM postings WHERE term=?", (term,))
                if not found:
                    continue
                rows, tf, length = unpack_postings(found[0][0]).astype(np.float64)
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
            ids = dict(self._query(
                f"SELECT row, chunk_id FROM chunks WHERE row IN ({','.join('?' * len(best))})", [r for r, _ in best]))
        return [(ids[row], score) for row, score in best if row in ids]

    def _title_index(self) -> dict[str, list[tuple[str, frozenset[str]]]]:
        """term -> [(source, the terms of one of its titles)]: its first heading, and its file name's words."""
        if self._titles is None:
            with self._lock:
                rows = self._query("SELECT source, headings FROM chunks WHERE row IN "
                                   "(SELECT MIN(row) FROM chunks GROUP BY source)")
            index: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
            for source, headings in rows:
                stem_words = re.sub(r"[\W_]+", " ", PurePosixPath(source).stem)
                for title in (headings.split(" > ")[0], stem_words):
                    title_terms = frozenset(t for t in terms(title) if t.isalpha() and len(t) > 2)
                    for term in title_terms:
                        index[term].append((source, title_terms))
            self._titles = index
        return self._titles

    def named_sources(self, query: str) -> dict[str, frozenset[str]]:
        """Documents the question names by their title, with the title words it used: two or more of the
        title's words, most of them, and a question about something more than the title ("how much will the
        harbour wall repairs cost?" asks about a headline's topic, which other documents may answer too)."""
        query_terms = set(analyse(query).focus)
        named: dict[str, frozenset[str]] = {}
        for term in query_terms:
            for source, title_terms in self._title_index().get(term, ()):
                shared = title_terms & query_terms
                if (len(shared) >= 2 and len(shared) >= NAMED_SHARE * len(title_terms)
                        and query_terms - title_terms):
                    named[source] = named.get(source, frozenset()) | shared
        return named if len(named) <= MAX_NAMED else {}  # a title made of common words names nothing

    def search(self, query: str, k: int = 5, mode: str = "hybrid", pool: int = 30) -> list[Passage]:
        """The k best passages for query; mode is hybrid (RRF of both), dense or lexical.

        Each passage keeps the score of each side that ranked it (dense cosine, BM25), None where it did not.
        A question that names documents by their titles ("what does the Rye harbour report say about ...")
        is answered from their passages only (from all, when none of theirs is in the candidate pool).
        """
        named = self.named_sources(query)
        pool = pool * 4 if named else pool
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
        if named:
            sources = self.chunk_sources([cid for cid, _ in fused])
            fused = [pair for pair in fused if sources.get(pair[0]) in named] or fused
        found = self.passages([cid for cid, _ in fused[: k + 10]])  # ids missing from the side store drop out
        top = [(cid, score) for cid, score in fused if cid in found][:k]
        return [Passage(**{**found[cid].__dict__, "score": score, "dense": dense.get(cid), "lexical": lexical.get(cid)})
                for cid, score in top]
