"""HTML for citation cards and the source view. Every piece of document text goes through escape()."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from index.collections import DEFAULT_COLLECTION
from qa.format import split_at_markers, where
from qa.types import Answer

from .security import VIEW_SCRIPT

CONTEXT_CHARS = 220


def source_link(source: str, start: int, end: int, collection: str = DEFAULT_COLLECTION) -> str:
    where = "" if collection == DEFAULT_COLLECTION else f"collection={quote(collection)}&"
    return f"/view/{quote(source)}?{where}start={start}&end={end}#span"


def _paragraph_around(text: str, start: int, end: int) -> tuple[str, str, str]:
    """The span with its surrounding paragraph (cut to about CONTEXT_CHARS each side)."""
    left = max(text.rfind("\n", 0, start) + 1, start - CONTEXT_CHARS)
    right = text.find("\n", end)
    right = len(text) if right == -1 else min(right, end + CONTEXT_CHARS)
    before = ("\u2026" if left > 0 and text[left - 1] != "\n" else "") + text[left:start]
    after = text[end:right] + ("\u2026" if right < len(text) and text[right] != "\n" else "")
    return before, text[start:end], after


def _card(label: str, source: str, line: int, start: int, end: int, text: str, extra: str = "",
          page: int | None = None, headings: str = "", collection: str = DEFAULT_COLLECTION) -> str:
    before, span, after = _paragraph_around(text, start, end)
    place = escape(where(source, line, page, headings))
    return (
        f'<a class="qa-card" href="{escape(source_link(source, start, end, collection))}" target="_blank" rel="noopener">'
        f'<div class="qa-card-head"><span class="qa-n">{escape(label)}</span>'
        f'<span class="qa-src">{place}</span>{extra}</div>'
        f'<div class="qa-ctx">{escape(before)}<mark class="qa-span">{escape(span)}</mark>{escape(after)}</div>'
        f'<div class="qa-open">Open source \u2197</div></a>')


def link_markers(answer: Answer, collection: str = DEFAULT_COLLECTION) -> str:
    """The answer prose, escaped, with each citation's [n] marker (found by split_at_markers) as a link to its span;
    a "[1]" that document text happens to contain never becomes a link."""
    return "".join(escape(part) if isinstance(part, str) else
                   f'<a class="qa-cite" href="{escape(source_link(part.source, part.start, part.end, collection))}" '
                   f'target="_blank" rel="noopener">[{part.n}]</a>' for part in split_at_markers(answer))


def render_answer(answer: Answer, document_text, collection: str = DEFAULT_COLLECTION) -> str:
    """The assistant bubble: linked prose, then this answer's own sources in a collapsible block."""
    n = len(answer.citations) or min(len(answer.passages), 3)
    label = f"Sources ({n})" if answer.citations else f"Closest passages ({n})"
    return (f'{link_markers(answer, collection)}<details class="qa-sources" open><summary>{label}</summary>'
            f'{render_cards(answer, document_text, query=False, collection=collection)}</details>')


def render_cards(answer: Answer | None, document_text, query: bool = True,
                 collection: str = DEFAULT_COLLECTION) -> str:
    """The side panel for one answer: citation cards, or the closest passages when it abstained."""
    if answer is None:
        return '<div class="qa-empty">Citations appear here: each card shows the exact span it quotes.</div>'
    parts = []
    if query and answer.search_query != answer.question:
        parts.append(f'<div class="qa-query">searched for: {escape(answer.search_query)}</div>')
    if answer.conflict:  # the banner says what the JSON says, nothing more
        parts.append('<div class="qa-conflict">Sources differ: each account is shown with its own citation.</div>')
    if answer.abstained:
        if query:  # the panel says so; a bubble's own prose already does
            parts.append('<div class="qa-abstain">No passage answers this. The closest ones, best first:</div>')
        # Their rank, not the fusion score: 0.016 means nothing to a reader.
        for rank, p in enumerate(answer.passages[:3], start=1):
            text = document_text(p.source)
            parts.append(_card(f"#{rank}", p.source, p.line, p.start, p.end, text, "", p.page, p.headings,
                               collection))
    for c in answer.citations:
        parts.append(_card(f"[{c.n}]", c.source, c.line, c.start, c.end, document_text(c.source), "", c.page,
                           c.headings, collection))
    return "\n".join(parts)


def render_source_page(source: str, text: str, start: int | None, end: int | None) -> str:
    """A full source with the cited span highlighted and scrolled into view."""
    if start is not None and end is not None and 0 <= start <= end <= len(text):
        body = (f"{escape(text[:start])}<mark id=\"span\">{escape(text[start:end])}</mark>{escape(text[end:])}")
    else:
        body = escape(text)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{escape(source)}</title>
<style>body{{font:16px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2933}}
pre{{white-space:pre-wrap;font:inherit}}mark{{background:#ffe58a;color:#1f2933;padding:.1em 0;scroll-margin-top:40vh}}
h1{{font-size:1rem;color:#52606d}}
@media (prefers-color-scheme:dark){{body{{background:#12181f;color:#d9e2ec}}h1{{color:#9aa5b1}}}}</style></head>
<body><h1>{escape(source)}</h1><pre id="source-text">{body}</pre>
<script>{VIEW_SCRIPT}</script></body></html>"""
