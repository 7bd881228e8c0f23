"""Load -> chunk (with offsets) -> embed -> store: everything that writes the index."""

from importlib import import_module

# Where each name is defined, imported on first use: importing one light submodule (index.errors, on every `qa`
# command) had loaded the chunker and index.load with its parsers and subprocess isolation, which answering
# does not use.
_HOMES = {"Chunk": "chunk", "chunk_document": "chunk", "split_sentences": "chunk", "Settings": "config",
          "load_settings": "config", "QAError": "errors", "UsageError": "errors", "NotFoundError": "errors",
          "IndexMissingError": "errors", "Document": "load", "canonical_text": "load", "load_corpus": "load"}

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
