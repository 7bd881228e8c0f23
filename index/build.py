"""`qa index`: bring the index in line with the corpus, embedding only what is new."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from .chunk import Chunk, chunk_document, sentence_units
from .config import Settings
from .embed import embed_chunks, model_path, token_counts
from .errors import IndexBusyError, NotFoundError, QAError, UsageError
from .isolate import ParseCache
from .lexical import term_counts
from .load import Document, Skipped, list_files, load_corpus
from .progress import IndexEvent, Progress, plural
from .store import (VectorCopyDamaged, check_index_dir, current_meta, drop_collection, note_generation,
                    open_collection, open_side_store, publish_vector_copy, read_vector_copy, side_store_path,
                    unpack_postings, write_vector_copy)


def chunk_terms(text: str, headings: str, columns: str = ""):
    """BM25 terms of a chunk: its words and those of the headings above it (a definition is found by its term),
    and of a table's column headers ("default" finds the row under a "Default" column)."""
    return term_counts("\n".join(part for part in (headings, columns, text) if part))


CHROMA_BATCH = 4000  # below Chroma's max batch size
LOCK_FILE, PID_FILE = "index.lock", "index.pid"
PARSED_DIR = "parsed"  # what PDF and .docx files parsed to (index.isolate.ParseCache)
PENDING_COLLECTIONS = "pending-collections.json"  # a --rebuild's collection until it is in use
EMBED_CACHE = "embed-cache.sqlite"


@dataclass
class IndexReport:
    documents: int = 0
    chunks: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    embedded: int = 0  # chunk texts that went through the model in this run (sentences ride along)
    rebuilt: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"Indexed {plural(self.documents, 'document')}, {plural(self.chunks, 'chunk')} "
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


def pack_vectors(vectors: np.ndarray) -> bytes:
    return np.asarray(vectors, dtype=np.float16).tobytes()


class EmbeddingCache:
    """Vectors by (model, chunk text) hash, committed batch by batch as they are computed.

    A killed or failed `qa index` leaves them here, so the next run embeds only what was not
    done. A run that finishes has stored everything in the index and empties the cache.
    """

    def __init__(self, index_dir: Path, model: Path):
        self.path = index_dir / EMBED_CACHE
        self.model = str(model)
        self.conn = sqlite3.connect(str(self.path))
        self.conn.execute("CREATE TABLE IF NOT EXISTS matrices (key TEXT PRIMARY KEY, dim INTEGER NOT NULL, "
                          "data BLOB NOT NULL)")

    def _key(self, text: str) -> str:
        return text_hash(self.model + "\0" + text)

    def get_many(self, texts: list[str]) -> dict[str, np.ndarray]:
        keys = {self._key(t): t for t in texts}
        found: dict[str, np.ndarray] = {}
        key_list = list(keys)
        for i in range(0, len(key_list), 900):
            part = key_list[i:i + 900]
            for key, dim, data in self.conn.execute(
                    f"SELECT key, dim, data FROM matrices WHERE key IN ({','.join('?' * len(part))})", part):
                found[keys[key]] = np.frombuffer(data, dtype=np.float32).reshape(-1, dim)
        return found

    def put_many(self, texts: list[str], matrices: list[np.ndarray]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO matrices (key, dim, data) VALUES (?,?,?)",
                                  [(self._key(t), m.shape[1], np.asarray(m, dtype=np.float32).tobytes())
                                   for t, m in zip(texts, matrices)])

    def close(self) -> None:
        self.conn.close()


def embedding_input(chunk: Chunk) -> tuple[str, list[tuple[int, int]]]:
    """What the encoder reads for a chunk, and where its units (sentence_units) sit in it: the chunk's text, or, for
    a table chunk with column names, the names on a line above its rows, so that the chunk's vector and each row's
    are read knowing what the cells are ("Height | 38 metres" under "Property | Value")."""
    spans = sentence_units(chunk.text, chunk.table)
    if not chunk.columns:
        return chunk.text, spans
    shift = len(chunk.columns) + 1
    return f"{chunk.columns}\n{chunk.text}", [(s + shift, e + shift) for s, e in spans]


def embed_resumably(model: Path, chunks: list[Chunk], cache: EmbeddingCache, progress: Progress | None,
                    group_tokens: int = 16384, group_texts: int = 256,
                    on_vectors: Callable[[list[str], list[np.ndarray]], None] = lambda texts, matrices: None,
                    ) -> tuple[dict[str, np.ndarray], set[str]]:
    """For each chunk text: [chunk vector, sentence vectors...] (cached ones reused), and the texts that
    went through the model in this run. Each chunk is read once (as embedding_input gives it): its sentences'
    vectors are pooled from the same forward pass. Inputs go to the model in groups of at most group_tokens
    tokens and group_texts inputs, each committed to the cache when done: enough batches to keep every core busy,
    few enough seconds (and texts) for a progress display to move. on_vectors(texts, matrices) hears of each
    group (and of the cached texts) as soon as it is done."""
    inputs = {c.text: embedding_input(c) for c in chunks}
    texts_of: dict[str, list[str]] = defaultdict(list)  # model input -> the chunk texts it is read for
    for text, (read_as, _) in inputs.items():
        texts_of[read_as].append(text)
    spans = dict(inputs.values())

    def tell(read: list[str], matrices: list[np.ndarray]) -> None:
        pairs = [(text, m) for r, m in zip(read, matrices) for text in texts_of[r]]
        on_vectors([t for t, _ in pairs], [m for _, m in pairs])

    found = cache.get_many(list(spans))
    if found:
        tell(list(found), list(found.values()))
    todo = [t for t in spans if t not in found]
    tokens = dict(zip(todo, token_counts(model, todo)))
    todo.sort(key=tokens.__getitem__)  # similar token counts batch with little padding
    groups: list[list[str]] = []
    size = 0
    for text in todo:
        if not groups or size + tokens[text] > group_tokens or len(groups[-1]) >= group_texts:
            groups.append([])
            size = 0
        groups[-1].append(text)
        size += tokens[text]
    if progress:
        progress(IndexEvent("embedding", 0, len(todo)))
    done = 0
    for part in groups:
        matrices = embed_chunks(model, part, [spans[t] for t in part])
        cache.put_many(part, matrices)
        tell(part, matrices)
        found.update(zip(part, matrices))
        done += len(part)
        if progress:
            progress(IndexEvent("embedding", done, len(todo)))
    return ({text: found[read_as] for text, (read_as, _) in inputs.items()},
            {text for read_as in todo for text in texts_of[read_as]})


def _embeddings_for(new: list[Chunk], conn, collection, model: Path, cache: EmbeddingCache,
                    progress, writer: "ChromaWriter") -> tuple[np.ndarray, list[bytes], int]:
    """Chunk vectors, packed sentence vectors, and the count of chunk texts embedded, for the new chunks,
    each chunk handed to the writer as soon as its vector is known.

    Texts already in the index (a moved or copied paragraph) reuse their stored vectors; texts
    embedded by an interrupted earlier run come from the cache.
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
    todo = [c for c, h in zip(new, hashes) if h not in known]
    reused = [(c, known[h]) for c, h in zip(new, hashes) if h in known]
    if reused:
        writer.add([c for c, _ in reused], [v for _, v in reused])
    by_text = {c.text: c for c in todo}  # new chunks have distinct texts (unique_chunks)
    fresh, embedded_now = embed_resumably(
        model, todo, cache, progress,
        on_vectors=lambda texts, matrices: writer.add([by_text[t] for t in texts], [m[0] for m in matrices]))
    dim = next(iter(fresh.values())).shape[1] if fresh else next(iter(known.values())).shape[0] if known else 384
    vectors = np.zeros((len(new), dim), dtype=np.float32)
    sentence_blobs = []
    for i, (chunk, h) in enumerate(zip(new, hashes)):
        if h in known:
            vectors[i] = known[h]
            sentence_blobs.append(reuse[h][1])
        else:
            vectors[i] = fresh[chunk.text][0]
            sentence_blobs.append(pack_vectors(fresh[chunk.text][1:]))
    return vectors, sentence_blobs, len(embedded_now)


class ChromaWriter:
    """Upserts chunks (texts, metadata, vectors) into the Chroma collection on a thread of its own while the
    model embeds the rest. Chroma's write holds the GIL, but forward passes already running go on without
    it, so about half the write time is hidden (bench: 44.3 s in sequence, 39.6 s overlapped).

    Use as a context manager: leaving it waits for every write; the first write that failed is raised."""

    ROWS = 1000  # rows per upsert: fewer calls cost less per row, more keep the model's workers waiting

    def __init__(self, collection):
        self.collection = collection
        self.queue: queue.Queue = queue.Queue()
        self.error: QAError | None = None
        self.thread = threading.Thread(target=self._run, name="qa-chroma-writer", daemon=True)

    def add(self, chunks: list[Chunk], vectors: list[np.ndarray]) -> None:
        if self.error:
            raise self.error
        self.queue.put((chunks, vectors))

    def _run(self) -> None:
        chunks: list[Chunk] = []
        vectors: list[np.ndarray] = []
        done = False
        while not done:
            item = self.queue.get()
            if item is None:
                done = True
            else:
                chunks += item[0]
                vectors += item[1]
            if (len(chunks) >= self.ROWS or done) and chunks and not self.error:
                try:
                    _chroma(self.collection.upsert, ids=[c.chunk_id for c in chunks], embeddings=np.stack(vectors),
                            documents=[c.text for c in chunks], metadatas=[_chroma_metadata(c) for c in chunks])
                except QAError as exc:
                    self.error = exc
                chunks, vectors = [], []

    def __enter__(self) -> "ChromaWriter":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error and exc_info[0] is None:
            raise self.error


def _chroma_metadata(chunk: Chunk) -> dict:
    return {"source": chunk.source, "start": chunk.start, "end": chunk.end, "headings": chunk.headings,
            **({"page": chunk.page} if chunk.page else {})}


def _vector_copy_rows(index_dir: Path, old_meta: dict, wanted: dict, new_chunks: list[Chunk],
                      new_vectors: np.ndarray, collection) -> tuple[list[str], np.ndarray]:
    """Rows of vectors.npy for the new chunk set: old rows reused (if the old copy checks out), new rows
    added, the rest fetched from Chroma."""
    by_id = {c.chunk_id: new_vectors[i] for i, c in enumerate(new_chunks)}
    try:
        previous = read_vector_copy(index_dir, old_meta) if old_meta else None
    except VectorCopyDamaged:
        previous = None
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
    dim = new_vectors.shape[1] if len(new_chunks) else int(old_meta.get("dim", 384))
    matrix = np.stack([by_id[cid] for cid in ids]) if ids else np.zeros((0, dim), dtype=np.float32)
    return ids, matrix


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


@contextmanager
def index_lock(index_dir: Path):
    """One `qa index` per index folder at a time; the second is told who holds it."""
    from filelock import FileLock, Timeout

    check_index_dir(index_dir)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QAError(f"Cannot create the index folder {index_dir} ({exc.strerror})") from exc
    lock = FileLock(str(index_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            pid = (index_dir / PID_FILE).read_text().strip() or "?"
        except OSError:
            pid = "?"
        raise IndexBusyError(f"another qa index is running (pid {pid}) on {index_dir}: wait for it to finish") from None
    try:
        (index_dir / PID_FILE).write_text(str(os.getpid()))
        yield
    finally:
        (index_dir / PID_FILE).unlink(missing_ok=True)
        lock.release()


def _pending_collections(index_dir: Path) -> list[str]:
    try:
        names = json.loads((index_dir / PENDING_COLLECTIONS).read_text())
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    except (OSError, ValueError):
        return []


def _set_pending_collections(index_dir: Path, names: list[str]) -> None:
    path = index_dir / PENDING_COLLECTIONS
    if names:
        path.write_text(json.dumps(names))
    else:
        path.unlink(missing_ok=True)


def _clean_leftovers(settings: Settings, current_collection: str | None) -> None:
    """Remove what an interrupted --rebuild left behind: its half-written collection and store."""
    for name in _pending_collections(settings.index_dir):
        if name != current_collection:
            drop_collection(settings, name)
    _set_pending_collections(settings.index_dir, [])
    side_store_path(settings.index_dir).with_suffix(".sqlite.tmp").unlink(missing_ok=True)


def build_index(settings: Settings, corpus: Path | None = None, rebuild: bool = False,
                progress: Progress | None = None, allow_empty: bool = False) -> IndexReport:
    """Index the corpus folder incrementally: unchanged files are not re-embedded.

    progress, if given, receives IndexEvents: files read, each skipped file as found, chunks embedded.

    One run per index folder (a lock). A failure (disk full, a store that cannot be written)
    is one QAError line, and the previous index keeps answering. An empty corpus is refused
    unless allow_empty, so a wrong path cannot wipe an index.
    """
    corpus = corpus or settings.corpus
    if not corpus.exists():
        raise NotFoundError(f"No such corpus folder: {corpus}")
    with index_lock(settings.index_dir):
        try:
            return _build_locked(settings, corpus, rebuild, progress, allow_empty)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise QAError(f"qa index failed: {reason}; the previous index is unchanged") from exc


_INDEXER_CODE = ("build.py", "chunk.py", "embed.py", "formats.py", "isolate.py", "lexical.py", "load.py")


@cache
def _indexer_code_digest() -> str:
    """The indexer's own code, hashed once per process: a new version of it re-reads every file."""
    return hashlib.sha256(b"".join(Path(__file__).with_name(n).read_bytes() for n in _INDEXER_CODE)).hexdigest()


def files_fingerprint(corpus: Path, model: Path) -> str:
    """What the index's content follows from, short of reading the files: every file's name, size and mtime,
    the corpus, the model and this indexer's own code. Equal to the last finished run's: nothing changed."""
    files, refused = list_files(corpus)
    digest = hashlib.sha256(f"{corpus.resolve()}\0{model}\0{_indexer_code_digest()}\0".encode())
    for path, source in files:
        try:
            stat = path.stat()
        except OSError:
            return ""  # gone while listing: read everything
        # ctime too: a same-size edit whose mtime was put back (touch -r, cp -p over it) still moves the ctime,
        # and so does a chmod that makes the file unreadable; the inode catches a file swapped for another.
        digest.update(f"{source}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0{stat.st_ino}\0"
                      f"{stat.st_mode}\n".encode())
    digest.update("".join(f"{s.path}\0{s.reason}\n" for s in refused).encode())
    return digest.hexdigest()


def _finished_cleanly(index_dir: Path, meta: dict) -> bool:
    """The last run finished and left nothing to repair: no half-done rebuild or embedding, an intact vector copy."""
    if (_pending_collections(index_dir) or (index_dir / EMBED_CACHE).exists()
            or side_store_path(index_dir).with_suffix(".sqlite.tmp").exists()):
        return False
    try:
        return read_vector_copy(index_dir, meta) is not None
    except VectorCopyDamaged:
        return False


def _unchanged_report(store_path: Path, meta: dict, progress, started: float) -> IndexReport:
    """The report of a run that found every file as the last run left it (nothing read, nothing written)."""
    conn = open_side_store(store_path)
    try:
        sources = [s for (s,) in conn.execute("SELECT source FROM documents ORDER BY source")]
    finally:
        conn.close()
    skipped = [Skipped(path, reason) for path, reason in json.loads(meta.get("skipped", "[]"))]
    for skip in skipped:  # reported on every run, as a full run would
        if progress:
            progress(IndexEvent("skipped", skipped=skip))
    return IndexReport(documents=len(sources), chunks=int(meta["n_chunks"]), unchanged=sources, skipped=skipped,
                       seconds=time.perf_counter() - started)


def _build_locked(settings: Settings, corpus: Path, rebuild: bool, progress, allow_empty: bool) -> IndexReport:
    """The indexing run, under the lock.

    Crash safety: new vectors are added to Chroma first (a rebuild writes a new collection,
    listed as pending until it is in use), then the side store switches to the new chunk set
    in one SQLite transaction (a rebuild: a new file moved into place), then stale vectors are
    deleted. An interrupted run leaves the previous index answering questions, and the next
    run cleans what it left and reuses what it embedded.
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    model = model_path(settings.embed_model)
    store_path = side_store_path(index_dir)
    meta = current_meta(store_path)
    fingerprint = files_fingerprint(corpus, model)  # taken before reading: a file changed meanwhile differs next run
    if (not rebuild and meta.get("collection") and fingerprint and meta.get("files_fingerprint") == fingerprint
            and _finished_cleanly(index_dir, meta)):
        return _unchanged_report(store_path, meta, progress, started)
    parsed = ParseCache(index_dir / PARSED_DIR, _indexer_code_digest())
    documents, skipped = load_corpus(corpus, progress, parsed)
    parsed.keep_only({d.doc_hash for d in documents})
    if not documents and not allow_empty:
        raise UsageError(f"No readable documents in {corpus}: nothing indexed, the existing index is unchanged "
                         "(pass --allow-empty to empty it)")
    report = IndexReport(documents=len(documents), skipped=skipped)

    _clean_leftovers(settings, meta.get("collection"))
    model_changed = meta.get("model") not in (None, str(model))
    report.rebuilt = rebuild or not meta.get("collection") or model_changed
    if report.rebuilt:
        work_path = store_path.with_suffix(".sqlite.tmp")
        collection_name = f"qa-chunks-{uuid.uuid4().hex[:12]}"
        _set_pending_collections(index_dir, [collection_name])
    else:
        work_path, collection_name = store_path, meta["collection"]
    conn = open_side_store(work_path, create=True)
    collection = open_collection(settings, collection_name, create=True)
    generation = uuid.uuid4().hex

    # A document is unchanged when its bytes and its canonical text both are: a newer parser reads the same bytes
    # into another text (HTML's <br> became a line break), and a stored text kept from the old parse while the
    # chunks followed the new one broke canonical_text[start:end] == chunk text.
    old_docs = {source: (doc_hash, text) for source, doc_hash, text in
                conn.execute("SELECT source, doc_hash, text FROM documents")}
    new_docs = {d.source: d for d in documents}
    for source, doc in new_docs.items():
        if source not in old_docs:
            report.added.append(source)
        elif old_docs[source] != (doc.doc_hash, doc.text):
            report.changed.append(source)
        else:
            report.unchanged.append(source)
    report.removed = sorted(set(old_docs) - set(new_docs))

    wanted = unique_chunks(documents)
    existing = dict(conn.execute("SELECT chunk_id, row FROM chunks"))
    # Chunk ids follow the bytes and offsets, not the text: a re-parsed document's chunks are all written anew.
    reparsed = [s for s in report.changed if old_docs[s][0] == new_docs[s].doc_hash]
    redo: set[str] = set()
    for i in range(0, len(reparsed), 900):
        part = reparsed[i:i + 900]
        redo |= {cid for (cid,) in conn.execute(
            f"SELECT chunk_id FROM chunks WHERE source IN ({','.join('?' * len(part))})", part)}
    new_chunks = [c for cid, (c, _) in wanted.items() if cid not in existing or cid in redo]
    stale_ids = [cid for cid in existing if cid not in wanted or cid in redo]

    cache = EmbeddingCache(index_dir, model)
    # Texts and metadata go to Chroma too, though qa reads them from the side store: the collection stays a
    # complete langchain_chroma.Chroma store (eval's plain-LangChain baseline reads it so).
    try:
        with ChromaWriter(collection) as writer:
            vectors, sentence_blobs, report.embedded = _embeddings_for(new_chunks, conn, collection, model, cache,
                                                                       progress, writer)
    finally:
        cache.close()
    dim = vectors.shape[1] if len(new_chunks) else int(meta.get("dim", 384))
    copy_ids, copy_matrix = _vector_copy_rows(index_dir, meta, wanted, new_chunks, vectors, collection)
    copy_crc = write_vector_copy(index_dir, copy_ids, copy_matrix, generation)

    with conn:  # one transaction: readers see the old index or the new one, never half
        removed_rows: dict[str, set[int]] = defaultdict(set)
        added_rows: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for i in range(0, len(stale_ids), 900):
            part = stale_ids[i:i + 900]
            marks = ",".join("?" * len(part))
            for row, text, headings, columns in conn.execute(
                    f"SELECT row, text, headings, columns FROM chunks WHERE chunk_id IN ({marks})", part):
                for term in chunk_terms(text, headings, columns):
                    removed_rows[term].add(row)
            conn.execute(f"DELETE FROM chunks WHERE chunk_id IN ({marks})", part)
        for chunk, sentence_blob in zip(new_chunks, sentence_blobs):
            counts = chunk_terms(chunk.text, chunk.headings, chunk.columns)
            length = sum(counts.values())
            cur = conn.execute(
                'INSERT INTO chunks (chunk_id, source, start, "end", text, text_hash, n_terms, sentence_vectors, '
                "headings, page, columns, is_table) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (chunk.chunk_id, chunk.source, chunk.start, chunk.end, chunk.text, text_hash(chunk.text), length,
                 sentence_blob, chunk.headings, chunk.page, chunk.columns, int(chunk.table)))
            for term, tf in counts.items():
                added_rows[term].append((cur.lastrowid, tf, length))
        update_postings(conn, removed_rows, added_rows)
        conn.executemany("UPDATE chunks SET copies=? WHERE chunk_id=?", [(n, cid) for cid, (_, n) in wanted.items()])
        conn.executemany("DELETE FROM documents WHERE source=?", [(s,) for s in report.removed])
        conn.executemany("INSERT OR REPLACE INTO documents (source, doc_hash, text) VALUES (?,?,?)",
                         [(d.source, d.doc_hash, d.text) for d in documents
                          if old_docs.get(d.source) != (d.doc_hash, d.text)])
        avg = conn.execute("SELECT COALESCE(AVG(n_terms), 0), COUNT(*) FROM chunks").fetchone()
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)", [
            ("collection", collection_name), ("model", str(model)), ("corpus", str(corpus.resolve())),
            ("avg_terms", str(avg[0])), ("n_chunks", str(avg[1])), ("built_at", str(time.time())),
            ("generation", generation), ("dim", str(dim)), ("vectors_crc", copy_crc),
            ("files_fingerprint", fingerprint), ("skipped", json.dumps([[s.path, s.reason] for s in skipped]))])
    conn.close()

    if report.rebuilt:
        # Both collections are pending until the old one is dropped: a run killed on either side of the switch
        # leaves the next run to drop the one its store does not name.
        _set_pending_collections(index_dir, [collection_name, *([meta["collection"]] if meta.get("collection")
                                                                  else [])])
        os.replace(work_path, store_path)  # the switch: readers reopen on the new file
    publish_vector_copy(index_dir)
    note_generation(settings, generation)
    if report.rebuilt:
        if meta.get("collection"):
            drop_collection(settings, meta["collection"])
    else:
        # Stale vectors, and any left in Chroma by an interrupted or failed earlier run.
        in_store = set(wanted)
        orphans = [i for i in collection.get(include=[])["ids"] if i not in in_store]
        for i in range(0, len(orphans), CHROMA_BATCH):
            collection.delete(ids=orphans[i:i + CHROMA_BATCH])
    _set_pending_collections(index_dir, [])
    (index_dir / EMBED_CACHE).unlink(missing_ok=True)  # everything embedded is in the index now
    report.chunks = len(wanted)
    report.seconds = time.perf_counter() - started
    return report


def _chroma(call, **kwargs):
    """A Chroma write; its failures (disk full, a server gone) become one line."""
    try:
        return call(**kwargs)
    except Exception as exc:  # chromadb raises many unrelated types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QAError(f"qa index failed: Chroma could not store the vectors ({first}); "
                      "the previous index is unchanged") from exc
