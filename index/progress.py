"""What a `qa index` run reports as it goes, for a display to draw (the library never draws)."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the `qa` command imports this module for plural(): not index.load's parsers with it
    from .load import Skipped


@dataclass(frozen=True)
class IndexEvent:
    """One step of an indexing run.

    stage "reading": done of total files read; "skipped": one file skipped (reported once, as found);
    "embedding": done of total chunks embedded (the summary's "chunks embedded"; 0 of N before the model loads).
    """

    stage: str
    done: int = 0
    total: int = 0
    skipped: Skipped | None = None


Progress = Callable[[IndexEvent], None]


def plural(n: int, noun: str) -> str:
    """ "1 document", "2 documents"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
