"""The collections a long-lived process (the server) answers from: one engine each, opened on first use."""

from __future__ import annotations

import threading

from index.collections import (DEFAULT_COLLECTION, CollectionInfo, check_name, collection_settings,
                               list_collections)
from index.config import Settings
from index.errors import NotFoundError
from index.store import close_chroma, side_store_path

from .engine import QA

# Collections kept open besides the default: the least recently asked one is closed (each open Chroma store
# holds a few threads and files; with a new collection per upload they grew without bound).
MAX_OPEN_COLLECTIONS = 12


class Library:
    """`Library(settings, default_qa).get("manuals").ask(...)`; settings.index_dir is the index root."""

    def __init__(self, settings: Settings, default: QA):
        self.settings = settings  # the root's settings: the default collection's
        self._engines: dict[str, QA] = {DEFAULT_COLLECTION: default}
        self._lock = threading.Lock()

    @property
    def default(self) -> QA:
        return self._engines[DEFAULT_COLLECTION]

    def get(self, name: str | None) -> QA:
        """The engine of a collection; an unknown (or since deleted) one is a NotFoundError."""
        name = check_name(name or DEFAULT_COLLECTION)
        if name == DEFAULT_COLLECTION:
            return self.default
        with self._lock:
            engine = self._engines.pop(name, None)
            if engine is not None and side_store_path(engine.settings.index_dir).exists():
                self._engines[name] = engine  # most recently asked last
                return engine
            if engine is not None:  # deleted under us (e.g. `qa collections delete`): its client is stale
                close_chroma(engine.settings)
            settings = collection_settings(self.settings, name)  # NotFoundError when there is no such collection
            if not side_store_path(settings.index_dir).exists():
                raise NotFoundError(f"No collection named {name!r}")
            engine = self._engines[name] = QA(settings, build_if_missing=False)
            while len(self._engines) > MAX_OPEN_COLLECTIONS + 1:
                oldest = next(n for n in self._engines if n != DEFAULT_COLLECTION)
                close_chroma(self._engines.pop(oldest).settings)
            return engine

    def forget(self, name: str) -> None:
        """Drop a collection's engine (after it was deleted or rebuilt from elsewhere) and close its store."""
        if name != DEFAULT_COLLECTION:
            with self._lock:
                engine = self._engines.pop(name, None)
            if engine is not None:
                close_chroma(engine.settings)

    def collections(self) -> list[CollectionInfo]:
        return list_collections(self.settings)
