"""Load -> chunk (with offsets) -> embed -> store: everything that writes the index."""

from .chunk import Chunk, chunk_document, split_sentences
from .config import Settings, load_settings
from .errors import IndexMissingError, NotFoundError, QAError, UsageError
from .load import Document, canonical_text, load_corpus

__all__ = ["Chunk", "Document", "Settings", "canonical_text", "chunk_document", "split_sentences", "load_corpus",
           "load_settings", "QAError", "UsageError", "NotFoundError", "IndexMissingError"]
