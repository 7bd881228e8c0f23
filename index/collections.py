"""Collections: a named index per folder, all under one index root.

The default collection lives in the root itself (so an index made before collections existed
keeps working); a named one in `ROOT/collections/NAME/`. Each is a complete index folder with
its own store, lock and corpus path (recorded in its meta when it was indexed).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import IndexDamagedError, NotFoundError, QAError, UsageError

DEFAULT_COLLECTION = "default"
COLLECTIONS_DIR = "collections"
UPLOADS_DIR = "files"  # inside a collection's folder: documents added from the browser
# Lower case only, so one name is one folder on case-insensitive file systems too.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_NAME = re.compile(NAME_PATTERN)


def check_name(name: str) -> str:
    """The name, or a UsageError saying what a collection name may be."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(f"collection names are 1-40 lower-case letters, digits, '-' or '_' "
                         f"(starting with a letter or digit), got {name!r}")
    return name


def collection_dir(root: Path, name: str) -> Path:
    return root if check_name(name) == DEFAULT_COLLECTION else root / COLLECTIONS_DIR / name


def uploads_dir(root: Path, name: str) -> Path:
    """Where the browser's uploads into a collection are kept (its corpus, when it was made from uploads)."""
    return collection_dir(root, name) / UPLOADS_DIR


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    corpus: str  # the folder it indexes ("" when it was never indexed)
    documents: int
    chunks: int
    bytes: int  # on disk, index and uploads together
    indexed_at: float | None  # when the index last changed (epoch seconds)
    uploads: bool  # its documents were added from the browser and live in its folder

    def to_json(self) -> dict:
        return {"name": self.name, "corpus": self.corpus, "documents": self.documents, "chunks": self.chunks,
                "bytes": self.bytes, "indexed_at": self.indexed_at, "uploads": self.uploads}


def _read_store(index_dir: Path) -> tuple[dict[str, str], int] | None:
    """(meta, document count) of a finished index, read without opening the vectors; None if there is none."""
    path = index_dir / "index.sqlite"
    if not path.is_file():
        return None
    # A run killed mid-commit leaves a hot journal that only a writable connection rolls back (SQLite's own
    # recovery); read-only, the store would look missing until someone re-indexed it.
    hot_journal = path.with_name(path.name + "-journal").exists()
    try:
        conn = sqlite3.connect(path if hot_journal else f"file:{path}?mode=ro", uri=not hot_journal)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            documents = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return meta, documents


def collection_settings(settings: Settings, name: str, corpus: Path | None = None) -> Settings:
    """Settings for one collection: its index folder, and the corpus it indexes.

    corpus, when given, is the folder to index into it. Otherwise a named collection indexes the
    folder recorded when it was made (an unknown name is a NotFoundError); the default collection
    indexes QA_CORPUS / --corpus, as before collections existed.
    """
    index_dir = collection_dir(settings.index_dir, name)
    if corpus is None and name != DEFAULT_COLLECTION:
        found = _read_store(index_dir)
        if found is None and (index_dir / "index.sqlite").is_file():  # there, but unreadable: not "no such"
            raise IndexDamagedError(index_dir, "its side store cannot be read")
        if found is None or not found[0].get("corpus"):
            raise NotFoundError(f"No collection named {name!r}: make it with `qa index FOLDER --collection {name}`")
        corpus = Path(found[0]["corpus"])
    return settings.with_(index_dir=index_dir, corpus=corpus)


def collection_names(settings: Settings) -> list[str]:
    """The default collection, then the named ones that have an index, in name order."""
    folder = settings.index_dir / COLLECTIONS_DIR
    named = sorted(p.name for p in folder.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)
                   and (p / "index.sqlite").is_file()) if folder.is_dir() else []
    return [DEFAULT_COLLECTION] + [n for n in named if n != DEFAULT_COLLECTION]


def _size(folder: Path, skip: tuple[Path, ...] = ()) -> int:
    total = 0
    for path in folder.rglob("*"):
        if any(path == s or s in path.parents for s in skip):
            continue
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue  # removed while we looked
    return total


def collection_info(settings: Settings, name: str) -> CollectionInfo:
    index_dir = collection_dir(settings.index_dir, name)
    found = _read_store(index_dir)
    meta, documents = found if found else ({}, 0)
    store = index_dir / "index.sqlite"
    corpus = meta.get("corpus", "")
    # The default collection's folder is the root: the named collections, the eval's indexes and the saved
    # conversations there are not its size.
    skip = tuple(index_dir / p for p in (COLLECTIONS_DIR, "eval")) + tuple(index_dir.glob("conversations.sqlite*")) \
        if name == DEFAULT_COLLECTION else ()
    return CollectionInfo(name=name, corpus=corpus, documents=documents, chunks=int(meta.get("n_chunks", 0)),
                          bytes=_size(index_dir, skip) if index_dir.is_dir() else 0,
                          indexed_at=store.stat().st_mtime if store.is_file() else None,
                          uploads=bool(corpus) and Path(corpus) == uploads_dir(settings.index_dir, name).resolve())


_infos: dict[Path, tuple[tuple, CollectionInfo]] = {}  # index folder -> (what it looked like, its info)


def _looks(index_dir: Path) -> tuple:
    """A few stats that change whenever an index run, an upload or a deletion changes the collection."""
    found = []
    for path in (index_dir, index_dir / "index.sqlite", index_dir / "index.sqlite-journal"):
        try:
            st = path.stat()
            found.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            found.append(None)
    return tuple(found)


def list_collections(settings: Settings) -> list[CollectionInfo]:
    """Every collection's info; each read again only when its folder or store changed (the chat lists them on
    every page load and picker focus: with 1,000 collections a fresh read took 1 s each time)."""
    infos = []
    for name in collection_names(settings):
        index_dir = collection_dir(settings.index_dir, name)
        looks = _looks(index_dir)
        cached = _infos.get(index_dir)
        if cached is None or cached[0] != looks:
            cached = _infos[index_dir] = (looks, collection_info(settings, name))
        infos.append(cached[1])
    return infos


def delete_collection(settings: Settings, name: str) -> None:
    """Remove a named collection: its Chroma collection, its index folder and its uploaded documents.

    The default collection is not deleted (the first `qa ask` would only build it again): rebuild it instead.
    The documents of a collection made from a folder stay where they are; only the index goes.
    """
    from .build import index_lock
    from .store import drop_collection

    if check_name(name) == DEFAULT_COLLECTION:
        raise UsageError("the default collection cannot be deleted; `qa index --rebuild` rebuilds it")
    index_dir = collection_dir(settings.index_dir, name)
    found = _read_store(index_dir)
    if not index_dir.is_dir():
        raise NotFoundError(f"No collection named {name!r}")
    with index_lock(index_dir):  # not while a `qa index` writes it
        if found and found[0].get("collection"):
            drop_collection(settings.with_(index_dir=index_dir), found[0]["collection"])
        # Renamed first, so a half-deleted folder is never mistaken for a collection.
        trash = index_dir.with_name(f".deleted-{name}-{time.time_ns()}")
        try:
            index_dir.rename(trash)
        except OSError as exc:
            raise QAError(f"could not delete collection {name!r}: {exc.strerror}") from exc
    shutil.rmtree(trash, ignore_errors=True)
