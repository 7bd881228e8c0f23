"""Retrieve, answer, cite: the question-answering library behind the `qa` command."""

from index.errors import IndexMissingError, NotFoundError, QAError, UsageError

from .types import Answer, Citation, Passage

__all__ = ["QA", "Answer", "Citation", "Passage", "QAError", "UsageError", "NotFoundError", "IndexMissingError"]


def __getattr__(name: str):
    # QA pulls in the engine lazily so `import qa` stays cheap for the CLI.
    if name == "QA":
        from .engine import QA

        return QA
    raise AttributeError(name)
