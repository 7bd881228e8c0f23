"""What a request may ask (question, k, mode), checked before anything heavy is loaded: the CLI checks here
and then starts loading the reader while the engine imports."""

from __future__ import annotations

from index.errors import UsageError
from index.text import is_utf8

MAX_QUESTION_CHARS = 2000
MAX_K = 50
MODES = ("hybrid", "dense", "lexical")


def check_question(question: str, k: int, mode: str) -> str:
    """The question stripped, or a UsageError naming what is wrong with the request."""
    if not isinstance(question, str) or not question.strip():
        raise UsageError("The question is empty: ask something, e.g. \"Who was convicted?\"")
    if not question.isascii() and not is_utf8(question):  # a terminal's stray bytes, as lone surrogates
        raise UsageError("The question is not valid UTF-8 text")
    if len(question) > MAX_QUESTION_CHARS:
        raise UsageError(f"The question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
    if not 1 <= k <= MAX_K:
        raise UsageError(f"k must be between 1 and {MAX_K}, got {k}")
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return " ".join(question.split())
