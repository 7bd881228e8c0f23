"""Where the index lives: the Chroma collection (vectors) and a SQLite side store.

The side store holds what answering needs besides vectors: the canonical text of every
indexed document, chunk rows with offsets, and BM25 postings. It also names the Chroma
collection in use, so a rebuild can write a new collection and switch over atomically.
Nothing else imports chromadb.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import uuid
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from .config import Settings
from .errors import IndexDamagedError, IndexMissingError, QAError

SIDE_STORE = "index.sqlite"
SCHEMA_VERSION = "9"  # bump when the tables, the stemmer or the units (stored sentence vectors) change: rebuilt
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (source TEXT PRIMARY KEY, doc_hash TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, source TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, text_hash TEXT NOT NULL,
    n_terms INTEGER NOT NULL, copies INTEGER NOT NULL DEFAULT 1,
    headings TEXT NOT NULL DEFAULT '', page INTEGER,  -- heading path above the chunk; PDF page
    columns TEXT NOT NULL DEFAULT '', is_table INTEGER NOT NULL DEFAULT 0,  -- a table chunk's column headers
    sentence_vectors BLOB NOT NULL);  -- float16, one row per sentence of the chunk (for the answerer)
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS postings (term TEXT PRIMARY KEY, df INTEGER NOT NULL, data BLOB NOT NULL);
"""


def side_store_path(index_dir: Path) -> Path:
    return index_dir / SIDE_STORE


def check_index_dir(index_dir: Path) -> None:
    if index_dir.exists() and not index_dir.is_dir():
        raise QAError(f"The index folder {index_dir} is a file: point --index-dir (QA_INDEX_DIR) at a folder")


REQUIRED_META = ("schema", "collection", "generation", "n_chunks", "model")


def open_side_store(path: Path, create: bool = False) -> sqlite3.Connection:
    """Open the SQLite side store.

    create=True is the indexer's working store (made if missing). Otherwise the store must be
    a finished index: missing is IndexMissingError; empty, unreadable, lacking its meta or with
    counts that disagree is IndexDamagedError, so a broken index never answers silently.
    """
    check_index_dir(path.parent)
    if not create and not path.exists():
        raise IndexMissingError(f"No index at {path.parent}: run `qa index`")
    if not create and path.stat().st_size == 0:
        raise IndexDamagedError(path.parent, f"{path.name} is empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    except sqlite3.OperationalError as exc:
        if not create or "no such table" not in str(exc):
            conn.close()
            raise IndexDamagedError(path.parent, str(exc)) from exc
        meta = {}
    except sqlite3.DatabaseError as exc:  # not a database at all (an empty file is one: "no such table")
        conn.close()
        raise IndexDamagedError(path.parent, str(exc)) from exc
    if meta.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        conn.close()
        raise IndexMissingError(f"The index at {path.parent} is from another version: run `qa index --rebuild`")
    if create:
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        conn.commit()
        return conn
    try:
        missing = [key for key in REQUIRED_META if key not in meta]
        if missing:
            raise IndexDamagedError(path.parent, f"no {', '.join(missing)} recorded")
        count = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if str(count) != meta["n_chunks"]:
            raise IndexDamagedError(path.parent, f"{count} chunks stored, {meta['n_chunks']} recorded")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise IndexDamagedError(path.parent, str(exc)) from exc
    except IndexDamagedError:
        conn.close()
        raise
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
    """The finished index's meta, or {} when there is none, it is damaged or from another version (so: rebuild)."""
    if not path.exists():
        return {}
    try:
        conn = open_side_store(path)
    except (IndexMissingError, IndexDamagedError):
        return {}
    try:
        return read_meta(conn)
    finally:
        conn.close()


VECTOR_COPY = "vectors.npy"
VECTOR_IDS = "vectors.json"


def vectors_checksum(vectors: np.ndarray) -> str:
    """crc32 of the float32 rows: cheap enough to check on every cold start (~25 ms for 100k chunks)."""
    return f"{zlib.crc32(np.ascontiguousarray(vectors, dtype=np.float32)):08x}"


def write_vector_copy(index_dir: Path, ids: list[str], vectors: np.ndarray, generation: str) -> str:
    """Write the exact copy of the stored vectors (for fast-starting processes) as .tmp files; return its checksum.

    publish_vector_copy() moves it into place once the side store names this generation and checksum.
    """
    tmp_npy, tmp_ids = index_dir / (VECTOR_COPY + ".tmp"), index_dir / (VECTOR_IDS + ".tmp")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    with open(tmp_npy, "wb") as f:
        np.save(f, vectors)
    tmp_ids.write_text(json.dumps({"generation": generation, "ids": ids}))
    return vectors_checksum(vectors)


def publish_vector_copy(index_dir: Path) -> None:
    tmp_npy, tmp_ids = index_dir / (VECTOR_COPY + ".tmp"), index_dir / (VECTOR_IDS + ".tmp")
    if tmp_npy.exists() and tmp_ids.exists():
        os.replace(tmp_npy, index_dir / VECTOR_COPY)
        os.replace(tmp_ids, index_dir / VECTOR_IDS)


class VectorCopyDamaged(Exception):
    """The copy claims this generation but fails its checks (the caller falls back to Chroma)."""


def read_vector_copy(index_dir: Path, meta: dict[str, str]) -> tuple[list[str], np.ndarray] | None:
    """(ids, memory-mapped vectors) if the copy belongs to this index generation, else None.

    Raises VectorCopyDamaged when it belongs to this generation but its shape or checksum is wrong.
    """
    try:
        ids_meta = json.loads((index_dir / VECTOR_IDS).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(ids_meta, dict) or ids_meta.get("generation") != meta.get("generation"):
        return None
    try:
        vectors = np.load(index_dir / VECTOR_COPY, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise VectorCopyDamaged(f"{VECTOR_COPY} unreadable: {exc}") from exc
    ids = ids_meta.get("ids")
    if (not isinstance(ids, list) or vectors.ndim != 2 or len(ids) != vectors.shape[0]
            or str(vectors.shape[1]) != meta.get("dim", str(vectors.shape[1])) or vectors.dtype != np.float32):
        raise VectorCopyDamaged(f"{VECTOR_COPY} has shape {vectors.shape}, not ({len(ids or [])}, {meta.get('dim')})")
    if meta.get("vectors_crc") and vectors_checksum(vectors) != meta["vectors_crc"]:
        raise VectorCopyDamaged(f"{VECTOR_COPY} fails its checksum")
    return ids, vectors


_CHROMA_LOCK = threading.Lock()
# Local store path -> the index generation this process's client has seen. A local Chroma client loads the
# vectors once and never sees what another process (`qa index`) writes afterwards, so a reader of a newer
# generation gets a fresh client: without one, a running server searched the vectors of the day it started.
_SEEN_GENERATION: dict[str, str] = {}


def open_chroma(settings: Settings, generation: str | None = None):
    """The Chroma client: HttpClient when CHROMA_HOST is set, else a PersistentClient in the index folder.

    One client per place and process: chromadb's client constructor is not thread-safe (two threads
    opening the same path at once fail with a KeyError), and a server reopens the index after every run.
    With generation (the index generation a reader answers from), a local client opened before another
    process wrote that generation is stopped and replaced by one that reads the store as it is now.
    """
    path = str(settings.index_dir / "chroma")
    with _CHROMA_LOCK:
        if generation and not settings.chroma_host:
            if _SEEN_GENERATION.get(path, generation) != generation:
                _stop_local_client(path)
            _SEEN_GENERATION[path] = generation
        return _chroma_client(settings.chroma_host, settings.chroma_port, path)


def note_generation(settings: Settings, generation: str) -> None:
    """This process wrote `generation` through its own client (an in-process `qa index`): that client has seen it."""
    if not settings.chroma_host:
        with _CHROMA_LOCK:
            _SEEN_GENERATION[str(settings.index_dir / "chroma")] = generation


def _stop_local_client(path: str) -> None:
    """Stop one local store's client (the caller holds _CHROMA_LOCK); the next open starts a fresh one."""
    from chromadb.api.client import SharedSystemClient

    _chroma_client.cache_clear()  # the others' systems stay in chromadb's map and are found again
    _SEEN_GENERATION.pop(path, None)
    system = SharedSystemClient._identifier_to_system.pop(path, None)
    if system is not None:
        system.stop()


@lru_cache(maxsize=16)
def _chroma_client(host: str | None, port: int, path: str):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if host:
            return chromadb.HttpClient(host=host, port=port, settings=chroma_settings)
        return chromadb.PersistentClient(path=path, settings=chroma_settings)
    except Exception as exc:  # chromadb raises bare ValueError/ConnectionError variants
        where = f"{host}:{port}" if host else path
        raise QAError(f"Cannot open the Chroma store at {where}: {exc}") from exc


def close_chroma(settings: Settings) -> None:
    """Stop the local Chroma client of one index folder: its threads and open files (chromadb keeps a system per
    path for the life of the process otherwise). The next open_chroma of that folder starts a fresh one."""
    if settings.chroma_host:
        return
    with _CHROMA_LOCK:
        _stop_local_client(str(settings.index_dir / "chroma"))


def open_collection(settings: Settings, name: str, create: bool = False, generation: str | None = None):
    """The named Chroma collection (cosine space), as of index `generation` when given (see open_chroma)."""
    client = open_chroma(settings, generation)
    if create:
        # search_ef 400 (Chroma's default 100): on 1.6k real PDF chunks the default's top 30 differed between two
        # builds of the same vectors for 13 of 183 questions and its top 10 missed the exact one for 3; at 400 none
        # did. On 100k clustered vectors recall@10 0.54 -> 0.91 for 2.6 -> 4.3 ms a query (bench/results/hnsw-ef.md).
        return client.get_or_create_collection(name, metadata={"hnsw:space": "cosine", "hnsw:search_ef": 400})
    try:
        return client.get_collection(name)
    except Exception:
        pass
    # The folder may have been deleted and rebuilt under this process: a cached client keeps seeing the old
    # store, so drop chromadb's cached systems and look once more with a fresh client.
    if not settings.chroma_host:
        from chromadb.api.client import SharedSystemClient

        with _CHROMA_LOCK:
            _chroma_client.cache_clear()
            _SEEN_GENERATION.clear()
            SharedSystemClient.clear_system_cache()
    try:
        return open_chroma(settings, generation).get_collection(name)
    except Exception as exc:
        raise IndexMissingError(f"Chroma collection {name!r} is missing: run `qa index --rebuild`") from exc


def drop_collection(settings: Settings, name: str) -> None:
    try:
        open_chroma(settings).delete_collection(name)
    except Exception:
        pass  # already gone
    if not settings.chroma_host:
        remove_dropped_segment_folders(settings.index_dir / "chroma")


def remove_dropped_segment_folders(chroma_dir: Path) -> None:
    """Delete the segment folders no live Chroma segment names. Chroma (1.5) deletes a dropped collection's
    rows but leaves its vector folder on disk, so every `qa index --rebuild` kept the old index's vectors."""
    try:
        conn = sqlite3.connect(f"file:{chroma_dir / 'chroma.sqlite3'}?mode=ro", uri=True)
        try:
            live = {row[0] for row in conn.execute("SELECT id FROM segments")}
        finally:
            conn.close()
    except sqlite3.Error:
        return  # no store, or one this code does not know: leave it alone
    for entry in chroma_dir.iterdir():  # it exists: its store just opened
        if entry.is_dir() and not entry.is_symlink() and _is_uuid(entry.name) and entry.name not in live:
            shutil.rmtree(entry, ignore_errors=True)


def _is_uuid(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False
