"""Plain-text rendering of answers for the terminal."""

from __future__ import annotations

import re

from .types import Answer, Citation

# Control characters (ANSI escapes included), and the invisible ones that reorder or hide what a terminal
# shows: bidi overrides and isolates (U+202E turned a cited sentence around), zero-width characters, line and
# paragraph separators, the BOM.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def terminal_safe(text: str) -> str:
    """Those characters shown as visible \\xNN or \\uNNNN, so a document cannot drive or disguise the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}",
                        text)


def snippet(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def where(source: str, line: int, page: int | None = None, headings: str = "") -> str:
    """source:line, with the PDF page and the heading path when there are any."""
    extra = ", ".join(x for x in (f"p. {page}" if page else "", headings) if x)
    return f"{source}:{line}" + (f" ({extra})" if extra else "")


def split_at_markers(answer: Answer) -> list[str | Citation]:
    """The answer prose as pieces of text, each [n] marker replaced by its Citation.

    Markers are found by walking the citations in order (each follows its own sentence), so a "[1]" that
    document text happens to contain stays text.
    """
    text, pos, parts = answer.answer, 0, []
    for c in answer.citations:
        marker = f"[{c.n}]"
        sentence = " ".join(c.text.split()).rstrip(".!?'\"\u2019\u201d")
        at = text.find(marker, min(pos + len(sentence), len(text)))
        if at == -1:
            at = text.find(marker, pos)
        if at == -1:
            continue
        parts += [text[pos:at], c]
        pos = at + len(marker)
    return [*parts, text[pos:]]


def format_answer(answer: Answer, show_query: bool = False) -> str:
    """The answer, then one line per citation:  [n] source:line  "span"."""
    lines = []
    if show_query and answer.search_query != answer.question:
        lines.append(f"searched for: {answer.search_query}")
    if answer.conflict:
        lines.append("The sources disagree; each account is cited:")
    lines.append(answer.answer)
    lines.append("")
    if answer.abstained:
        lines.append("Closest passages:")
        for p in answer.passages[:3]:
            lines.append(f"  {where(p.source, p.line, p.page, p.headings)}  \"{snippet(p.text)}\"")
    else:
        for c in answer.citations:
            lines.append(f"[{c.n}] {where(c.source, c.line, c.page, c.headings)}  \"{snippet(c.text)}\"")
    return terminal_safe("\n".join(lines))
