"""The collections a long-lived process (the server) answers from: one engine each, opened on first use."""

from __future__ import annotations

import threading

from index.collections import (DEFAULT_COLLECTION, CollectionInfo, check_name, collection_settings,
                               list_collections)
from index.config import Settings
from index.errors import NotFoundError
from index.store import side_store_path

from .engine import QA


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
        engine = self._engines.get(name)
        if engine is not None and side_store_path(engine.settings.index_dir).exists():
            return engine
        with self._lock:
            self._engines.pop(name, None)
            settings = collection_settings(self.settings, name)  # NotFoundError when there is no such collection
            if not side_store_path(settings.index_dir).exists():
                raise NotFoundError(f"No collection named {name!r}")
            engine = self._engines[name] = QA(settings, build_if_missing=False)
            return engine

    def forget(self, name: str) -> None:
        """Drop a collection's engine (after it was deleted or rebuilt from elsewhere)."""
        if name != DEFAULT_COLLECTION:
            with self._lock:
                self._engines.pop(name, None)

    def collections(self) -> list[CollectionInfo]:
        return list_collections(self.settings)
