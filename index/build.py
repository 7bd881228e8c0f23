"""`qa index`: bring the index in line with the corpus, embedding only what is new."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .chunk import Chunk, chunk_document, split_sentences
from .config import Settings
from .embed import embed_documents, model_path
from .errors import NotFoundError
from .lexical import term_counts
from .load import Document, Skipped, load_corpus
from .store import (current_meta, drop_collection, open_collection, open_side_store, read_vector_copy,
                    side_store_path, unpack_postings,
                    write_vector_copy)

CHROMA_BATCH = 4000  # below Chroma's max batch size


@dataclass
class IndexReport:
    documents: int = 0
    chunks: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    embedded: int = 0  # chunk texts that went through the model in this run
    rebuilt: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"Indexed {self.documents} documents, {self.chunks} chunks "
                f"({len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
                f"{len(self.unchanged)} unchanged; {self.embedded} chunks embedded) in {self.seconds:.1f}s")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def unique_chunks(documents: list[Document]) -> dict[str, tuple[Chunk, int]]:
    """chunk_id -> (chunk, copies): identical chunk texts are kept once, at their first place."""
    first: dict[str, str] = {}
    kept: dict[str, tuple[Chunk, int]] = {}
    for doc in documents:
        for chunk in chunk_document(doc):
            key = text_hash(chunk.text)
            if key in first:
                c, copies = kept[first[key]]
                kept[first[key]] = (c, copies + 1)
            else:
                first[key] = chunk.chunk_id
                kept[chunk.chunk_id] = (chunk, 1)
    return kept


def sentence_texts(chunk: Chunk) -> list[str]:
    """The sentences of a chunk, in the order the answerer splits them."""
    return [chunk.text[a:b] for a, b in split_sentences(chunk.text)]


def pack_vectors(vectors: np.ndarray) -> bytes:
    return np.asarray(vectors, dtype=np.float16).tobytes()


def _embeddings_for(new: list[Chunk], conn, collection, model: Path,
                    progress) -> tuple[np.ndarray, list[bytes], int]:
    """Chunk vectors, packed sentence vectors and the count of chunk texts embedded, for the new chunks.

    Texts already in the index (a moved or copied paragraph) reuse their stored vectors; a
    sentence that is the whole chunk shares the chunk's vector.
    """
    hashes = [text_hash(c.text) for c in new]
    reuse: dict[str, tuple[str, bytes]] = {}
    for i in range(0, len(hashes), 900):
        part = hashes[i:i + 900]
        marks = ",".join("?" * len(part))
        for h, cid, blob in conn.execute(
                f"SELECT text_hash, chunk_id, sentence_vectors FROM chunks WHERE text_hash IN ({marks})", part):
            reuse[h] = (cid, blob)
    known: dict[str, np.ndarray] = {}
    if reuse:
        got = collection.get(ids=[cid for cid, _ in reuse.values()], include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        known = {h: np.asarray(by_id[cid], dtype=np.float32) for h, (cid, _) in reuse.items() if cid in by_id}
    todo = [i for i, h in enumerate(hashes) if h not in known]
    texts = list(dict.fromkeys([new[i].text for i in todo] +
                               [t for i in todo for t in sentence_texts(new[i]) if t != new[i].text]))
    fresh = dict(zip(texts, embed_documents(model, texts, progress=progress)))
    dim = next(iter(fresh.values())).shape[0] if fresh else next(iter(known.values())).shape[0] if known else 384
    vectors = np.zeros((len(new), dim), dtype=np.float32)
    sentence_blobs = []
    for i, (chunk, h) in enumerate(zip(new, hashes)):
        if h in known:
            vectors[i] = known[h]
            sentence_blobs.append(reuse[h][1])
        else:
            vectors[i] = fresh[chunk.text]
            sentence_blobs.append(pack_vectors(np.stack([fresh[t] for t in sentence_texts(chunk)])))
    return vectors, sentence_blobs, len(todo)


def _refresh_vector_copy(index_dir: Path, old_generation: str | None, generation: str, wanted: dict,
                         new_chunks: list[Chunk], new_vectors: np.ndarray, collection) -> None:
    """Rewrite vectors.npy for the new chunk set: old rows reused, new rows appended, the rest from Chroma."""
    by_id = {c.chunk_id: new_vectors[i] for i, c in enumerate(new_chunks)}
    previous = read_vector_copy(index_dir, old_generation) if old_generation else None
    if previous:
        row_of = {cid: i for i, cid in enumerate(previous[0])}
        for cid in wanted:
            if cid not in by_id and cid in row_of:
                by_id[cid] = previous[1][row_of[cid]]
    missing = [cid for cid in wanted if cid not in by_id]
    for i in range(0, len(missing), CHROMA_BATCH):
        got = collection.get(ids=missing[i:i + CHROMA_BATCH], include=["embeddings"])
        by_id.update(zip(got["ids"], (np.asarray(v, dtype=np.float32) for v in got["embeddings"])))
    ids = [cid for cid in wanted if cid in by_id]
    dim = new_vectors.shape[1] if len(new_chunks) else 384
    matrix = np.stack([by_id[cid] for cid in ids]) if ids else np.zeros((0, dim), dtype=np.float32)
    write_vector_copy(index_dir, ids, matrix, generation)


def update_postings(conn, removed: dict[str, set[int]], added: dict[str, list[tuple[int, int, int]]]) -> None:
    """Rewrite the posting list of every term a run touched: one packed (row, tf, length) array per term.

    One row per term keeps a query to one read per term, however common the term.
    """
    for term in set(removed) | set(added):
        found = conn.execute("SELECT data FROM postings WHERE term=?", (term,)).fetchone()
        old = unpack_postings(found[0]) if found else np.zeros((3, 0), dtype=np.int32)
        if term in removed:
            old = old[:, ~np.isin(old[0], list(removed[term]))]
        new = np.asarray(added.get(term, []), dtype=np.int32).reshape(-1, 3).T
        merged = np.concatenate([old, new], axis=1)
        if merged.shape[1]:
            conn.execute("INSERT OR REPLACE INTO postings (term, df, data) VALUES (?,?,?)",
                         (term, merged.shape[1], merged.astype(np.int32).tobytes()))
        else:
            conn.execute("DELETE FROM postings WHERE term=?", (term,))


def build_index(settings: Settings, corpus: Path | None = None, rebuild: bool = False,
                progress: Callable[[int, int], None] | None = None) -> IndexReport:
    """Index the corpus folder incrementally: unchanged files are not re-embedded.

    Crash safety: new vectors are added to Chroma first, then the side store switches to
    the new chunk set in one SQLite transaction, then stale vectors are deleted. An
    interrupted run leaves the previous index answering questions.
    """
    started = time.perf_counter()
    corpus = corpus or settings.corpus
    if not corpus.exists():
        raise NotFoundError(f"No such corpus folder: {corpus}")
    documents, skipped = load_corpus(corpus)
    model = model_path(settings.embed_model)
    report = IndexReport(documents=len(documents), skipped=skipped)

    store_path = side_store_path(settings.index_dir)
    meta = current_meta(store_path)
    model_changed = meta.get("model") not in (None, str(model))
    report.rebuilt = rebuild or not meta.get("collection") or model_changed
    if report.rebuilt:
        work_path = store_path.with_suffix(".sqlite.tmp")
        work_path.unlink(missing_ok=True)
        collection_name = f"qa-chunks-{uuid.uuid4().hex[:12]}"
    else:
        work_path, collection_name = store_path, meta["collection"]
    conn = open_side_store(work_path, create=True)
    collection = open_collection(settings, collection_name, create=True)
    generation = uuid.uuid4().hex

    old_docs = dict(conn.execute("SELECT source, doc_hash FROM documents"))
    new_docs = {d.source: d for d in documents}
    for source, doc in new_docs.items():
        if source not in old_docs:
            report.added.append(source)
        elif old_docs[source] != doc.doc_hash:
            report.changed.append(source)
        else:
            report.unchanged.append(source)
    report.removed = sorted(set(old_docs) - set(new_docs))

    wanted = unique_chunks(documents)
    existing = dict(conn.execute("SELECT chunk_id, row FROM chunks"))
    new_chunks = [c for cid, (c, _) in wanted.items() if cid not in existing]
    stale_ids = [cid for cid in existing if cid not in wanted]

    vectors, sentence_blobs, report.embedded = _embeddings_for(new_chunks, conn, collection, model, progress)
    for i in range(0, len(new_chunks), CHROMA_BATCH):
        part = new_chunks[i:i + CHROMA_BATCH]
        collection.upsert(
            ids=[c.chunk_id for c in part], embeddings=vectors[i:i + CHROMA_BATCH],
            documents=[c.text for c in part],
            metadatas=[{"source": c.source, "start": c.start, "end": c.end} for c in part])

    with conn:  # one transaction: readers see the old index or the new one, never half
        removed_rows: dict[str, set[int]] = defaultdict(set)
        added_rows: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for i in range(0, len(stale_ids), 900):
            part = stale_ids[i:i + 900]
            marks = ",".join("?" * len(part))
            for row, text in conn.execute(f"SELECT row, text FROM chunks WHERE chunk_id IN ({marks})", part):
                for term in term_counts(text):
                    removed_rows[term].add(row)
            conn.execute(f"DELETE FROM chunks WHERE chunk_id IN ({marks})", part)
        for chunk, sentence_blob in zip(new_chunks, sentence_blobs):
            counts = term_counts(chunk.text)
            length = sum(counts.values())
            cur = conn.execute(
                'INSERT INTO chunks (chunk_id, source, start, "end", text, text_hash, n_terms, sentence_vectors) '
                "VALUES (?,?,?,?,?,?,?,?)",
                (chunk.chunk_id, chunk.source, chunk.start, chunk.end, chunk.text, text_hash(chunk.text), length,
                 sentence_blob))
            for term, tf in counts.items():
                added_rows[term].append((cur.lastrowid, tf, length))
        update_postings(conn, removed_rows, added_rows)
        conn.executemany("UPDATE chunks SET copies=? WHERE chunk_id=?", [(n, cid) for cid, (_, n) in wanted.items()])
        conn.executemany("DELETE FROM documents WHERE source=?", [(s,) for s in report.removed])
        conn.executemany("INSERT OR REPLACE INTO documents (source, doc_hash, text) VALUES (?,?,?)",
                         [(d.source, d.doc_hash, d.text) for d in documents
                          if old_docs.get(d.source) != d.doc_hash])
        avg = conn.execute("SELECT COALESCE(AVG(n_terms), 0), COUNT(*) FROM chunks").fetchone()
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)", [
            ("collection", collection_name), ("model", str(model)), ("corpus", str(corpus.resolve())),
            ("avg_terms", str(avg[0])), ("n_chunks", str(avg[1])), ("built_at", str(time.time())),
            ("generation", generation),
            ("dim", str(vectors.shape[1] if len(new_chunks) else meta.get("dim", 384)))])
    conn.close()

    if report.rebuilt:
        os.replace(work_path, store_path)
        if meta.get("collection"):
            drop_collection(settings, meta["collection"])
    else:
        # Stale vectors, and any left in Chroma by an interrupted earlier run.
        in_store = set(wanted)
        orphans = [i for i in collection.get(include=[])["ids"] if i not in in_store]
        for i in range(0, len(orphans), CHROMA_BATCH):
            collection.delete(ids=orphans[i:i + CHROMA_BATCH])
    _refresh_vector_copy(settings.index_dir, meta.get("generation"), generation, wanted, new_chunks, vectors,
                         collection)
    report.chunks = len(wanted)
    report.seconds = time.perf_counter() - started
    return report
