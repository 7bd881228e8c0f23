"""Where the index lives: the Chroma collection (vectors) and a SQLite side store.

The side store holds what answering needs besides vectors: the canonical text of every
indexed document, chunk rows with offsets, and BM25 postings. It also names the Chroma
collection in use, so a rebuild can write a new collection and switch over atomically.
Nothing else imports chromadb.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np

from .config import Settings
from .errors import IndexMissingError, QAError

SIDE_STORE = "index.sqlite"
SCHEMA_VERSION = "4"  # bump when the tables or the stemmer change; older indexes are rebuilt
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (source TEXT PRIMARY KEY, doc_hash TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, source TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, text_hash TEXT NOT NULL,
    n_terms INTEGER NOT NULL, copies INTEGER NOT NULL DEFAULT 1,
    sentence_vectors BLOB NOT NULL);  -- float16, one row per sentence of the chunk (for the answerer)
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS postings (term TEXT PRIMARY KEY, df INTEGER NOT NULL, data BLOB NOT NULL);
"""


def side_store_path(index_dir: Path) -> Path:
    return index_dir / SIDE_STORE


def open_side_store(path: Path, create: bool = False) -> sqlite3.Connection:
    """Open the SQLite side store; with create=False a missing store is an IndexMissingError."""
    if not create and not path.exists():
        raise IndexMissingError(f"No index at {path.parent}: run `qa index`")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        version = dict(conn.execute("SELECT key, value FROM meta")).get("schema", SCHEMA_VERSION)
    except sqlite3.DatabaseError:
        version = None if path.stat().st_size else SCHEMA_VERSION
    if version != SCHEMA_VERSION:
        conn.close()
        raise IndexMissingError(f"The index at {path.parent} is from another version: run `qa index --rebuild`")
    conn.executescript(SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
    conn.commit()
    return conn


def unpack_vectors(data: bytes, dim: int) -> np.ndarray:
    """Sentence vectors of a chunk as float32 rows."""
    return np.frombuffer(data, dtype=np.float16).reshape(-1, dim).astype(np.float32)


def unpack_postings(data: bytes) -> np.ndarray:
    """A term's posting list as a (3, df) int32 array: chunk rows, term frequencies, chunk lengths."""
    return np.frombuffer(data, dtype=np.int32).reshape(3, -1)


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta"))


def current_meta(path: Path) -> dict[str, str]:
    """The side store's meta, or {} when there is none or it is from another version (so: rebuild)."""
    if not path.exists():
        return {}
    try:
        conn = open_side_store(path)
    except IndexMissingError:
        return {}
    try:
        return read_meta(conn)
    finally:
        conn.close()


VECTOR_COPY = "vectors.npy"
VECTOR_IDS = "vectors.json"


def write_vector_copy(index_dir: Path, ids: list[str], vectors: np.ndarray, generation: str) -> None:
    """An exact copy of the stored vectors for processes that must start fast (see qa.retrieve)."""
    tmp_npy, tmp_ids = index_dir / (VECTOR_COPY + ".tmp"), index_dir / (VECTOR_IDS + ".tmp")
    with open(tmp_npy, "wb") as f:
        np.save(f, np.ascontiguousarray(vectors, dtype=np.float32))
    tmp_ids.write_text(json.dumps({"generation": generation, "ids": ids}))
    os.replace(tmp_npy, index_dir / VECTOR_COPY)
    os.replace(tmp_ids, index_dir / VECTOR_IDS)


def read_vector_copy(index_dir: Path, generation: str) -> tuple[list[str], np.ndarray] | None:
    """(ids, memory-mapped vectors) if the copy matches this index generation, else None."""
    try:
        meta = json.loads((index_dir / VECTOR_IDS).read_text())
        vectors = np.load(index_dir / VECTOR_COPY, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if meta.get("generation") != generation or len(meta["ids"]) != vectors.shape[0]:
        return None
    return meta["ids"], vectors


def open_chroma(settings: Settings):
    """The Chroma client: HttpClient when CHROMA_HOST is set, else a PersistentClient in the index folder."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
        return chromadb.PersistentClient(path=str(settings.index_dir / "chroma"), settings=chroma_settings)
    except Exception as exc:  # chromadb raises bare ValueError/ConnectionError variants
        where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else settings.index_dir
        raise QAError(f"Cannot open the Chroma store at {where}: {exc}") from exc


def open_collection(settings: Settings, name: str, create: bool = False):
    """The named Chroma collection (cosine space)."""
    client = open_chroma(settings)
    if create:
        return client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"})
    try:
        return client.get_collection(name)
    except Exception as exc:
        raise IndexMissingError(f"Chroma collection {name!r} is missing: run `qa index --rebuild`") from exc


def drop_collection(settings: Settings, name: str) -> None:
    try:
        open_chroma(settings).delete_collection(name)
    except Exception:
        pass  # already gone
