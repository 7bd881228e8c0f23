"""Retrieve, answer, cite: the question-answering library behind the `qa` command."""

import os

# One question's matrices are small: a second OpenBLAS thread only fought the reader's ONNX Runtime threads for
# the 2 cores (a cold `qa ask` 0.53 -> 0.50 s; the server already runs BLAS on one thread per call). Set before
# NumPy loads; a setting of the user's wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from index.errors import IndexMissingError, NotFoundError, QAError, UsageError

from .types import Answer, Citation, Passage

__all__ = ["QA", "Answer", "Citation", "Passage", "QAError", "UsageError", "NotFoundError", "IndexMissingError"]


def __getattr__(name: str):
    # QA pulls in the engine lazily so `import qa` stays cheap for the CLI.
    if name == "QA":
        from .engine import QA

        return QA
    raise AttributeError(name)
