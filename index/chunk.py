"""Sentence-aware chunking that keeps exact character offsets into the canonical text."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .formats import Block, heading_label, read_txt, split_cells, trim_span

if TYPE_CHECKING:  # index.load (parsers, subprocess isolation) is for indexing; answering imports this module
    from .load import Document

MAX_CHUNK_CHARS = 500
MIN_SENTENCE_WORDS = 4  # see _short_ones_joined
# Abbreviations whose trailing period does not end a sentence.
ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "inc", "ltd",
    "fig", "gen", "col", "lt", "sgt", "rev", "hon", "mt", "e.g", "i.e", "cf", "approx",
}
_LAST_WORD = re.compile(r"(\S+)$")
_NON_SPACE = re.compile(r"\S")
_WORD_WINDOW = 64
_SENTENCE_END = re.compile(r"""[.!?]+['"\u2019\u201d)\]]*(?=\s)""")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    source: str
    start: int
    end: int
    text: str  # == canonical_text(source)[start:end]
    headings: str = ""  # the heading path it sits under: "2. Definitions > 2.3 Contributor"
    page: int | None = None  # PDF page
    columns: str = ""  # a table chunk's column headers ("Option | Default | Meaning"), which its rows may not repeat
    table: bool = False  # rows of a table (see sentence_units)


def make_chunk_id(source: str, doc_hash: str, start: int, end: int) -> str:
    """Stable id from where the chunk sits: same file content and offsets, same id."""
    import hashlib  # here: answering imports this module, and never makes an id

    key = f"{source}\0{doc_hash}\0{start}\0{end}".encode()
    return hashlib.sha256(key).hexdigest()[:24]


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Offsets of the sentences in text[start:end] (a single paragraph), whitespace trimmed."""
    end = len(text) if end is None else end
    spans, cursor = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        stop = match.end()
        # The word before the mark, looked for in a bounded window (slicing from `cursor` made a paragraph of
        # many rejected ends quadratic): a word longer than the window is no abbreviation.
        window = max(cursor, match.start() - _WORD_WINDOW)
        word = _LAST_WORD.search(text, window, match.start())
        token = word.group(1).lower().lstrip("(\"'") if word and (word.start() > window or window == cursor) else ""
        if token in ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
            continue  # "Mr." or an initial such as "J."
        first = _NON_SPACE.search(text, stop, end)
        nxt = text[first.start()] if first else ""
        if nxt and not (nxt.isupper() or nxt.isdigit() or nxt in "\"'\u2018\u201c(["):
            continue  # "e.g. something" or "3.5 million": not a sentence start
        span = trim_span(text, cursor, stop)
        if span:
            spans.append(span)
        cursor = stop
    span = trim_span(text, cursor, end)
    if span:
        spans.append(span)
    return spans


def _short_ones_joined(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Fragments (is_fragment) joined to the sentence before (the first to the one after): "1996.", "Commun." or
    "313±12 958±43" read on their own say nothing a person could cite."""
    joined: list[tuple[int, int]] = []
    for s, e in spans:
        if joined and is_fragment(text[s:e]):
            joined[-1] = (joined[-1][0], e)
        else:
            joined.append((s, e))
    if len(joined) > 1 and is_fragment(text[joined[0][0]:joined[0][1]]):
        joined[:2] = [(joined[0][0], joined[1][1])]
    return joined


def is_fragment(text: str) -> bool:
    """Too little to read or cite alone: fewer than MIN_SENTENCE_WORDS words, or no letters ("Software", "2013",
    "• gray", "< 24 < 173 623±28")."""
    return len(text.split()) < MIN_SENTENCE_WORDS or not any(ch.isalpha() for ch in text)


_TABLE_RULE = re.compile(r"[\s|:+-]*-[\s|:+-]*")  # "|---|:--:|", a Markdown table's line under its header


_PARAGRAPH_BREAK = re.compile(r"(?:\r\n|\r|\n)[^\S\r\n]*(?:\r\n|\r|\n)")  # a blank line, in any line ending


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans between blank lines."""
    spans, pos = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    return spans + [(pos, len(text))]


_LINE = re.compile(r"[^\r\n]+")


def _lines(text: str) -> list[tuple[int, int]]:
    """Spans of the non-blank lines (ended by \n, \r\n or \r)."""
    return [m.span() for m in _LINE.finditer(text) if not m.group().isspace()]


def is_table_text(text: str) -> bool:
    """Lines of a Markdown table: two or more lines, each starting with "|", or the rule under a header as the
    second line (prose with a "|" in every line is not a table)."""
    lines = _lines(text)
    if len(lines) < 2 or not all("|" in text[s:e] for s, e in lines):
        return False
    return bool(_TABLE_RULE.fullmatch(text[slice(*lines[1])])) or all(text[s:e].lstrip().startswith("|")
                                                                     for s, e in lines)


def reads_as_rows(text: str, table: bool = False) -> bool:
    """Whether a chunk's units are table rows: a chunk of a table block, or one whose text is_table_text."""
    return table or is_table_text(text)


def sentence_units(text: str, table: bool = False) -> list[tuple[int, int]]:
    """What the answerer reads and cites one at a time in a chunk's text: its sentences, each inside one paragraph
    (a short one joined to its neighbour: _short_ones_joined), or, where it reads_as_rows, its lines, without the
    outer pipes, the header or the rule under it ("Dr. Smith | Born 1901. Died 1980." is one row, not two)."""
    if not reads_as_rows(text, table):
        # A chunk may hold short paragraphs merged into it (see _fragments_merged): sentences never run across a
        # blank line, but a short one is still joined to its neighbour.
        return _short_ones_joined(text, [span for s, e in _paragraphs(text) for span in split_sentences(text, s, e)])
    lines = _lines(text)
    header = len(lines) > 1 and bool(_TABLE_RULE.fullmatch(text[slice(*lines[1])]))  # a header and its rule
    rows = []
    for s, e in lines[2 if header else 0:]:
        s, e = trim_span(text, s, e) or (s, s)
        s += text.startswith("|", s)
        e -= e > s and text[e - 1] == "|" and text[e - 2] != "\\"
        span = trim_span(text, s, e)
        if span and any(ch.isalnum() for ch in text[span[0]:span[1]]):
            rows.append(span)
    return rows or split_sentences(text)


def table_row_text(row: str, columns: str) -> str:
    """A table row as it reads on its own: each cell with its column's name ("Height: 38 metres; Built: 1874"),
    or the column names above the row where the cells do not line up with them."""
    if not columns:
        return row
    names, cells = split_cells(columns), split_cells(row)
    if len(names) != len(cells):
        return f"{columns}\n{row}"
    return "; ".join(f"{n}: {c}" if n and n != c else c for n, c in zip(names, cells))


def _split_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence at whitespace so no chunk exceeds about `limit` characters."""
    pieces = []
    while end - start > limit:
        cut = text.rfind(" ", start, start + limit)
        cut = cut if cut > start else start + limit
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    pieces.append((start, end))
    return [p for p in pieces if p[0] < p[1]]


def _line_groups(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Consecutive lines of a code block or table, grouped up to about `limit` characters."""
    groups, group_start, pos = [], start, start
    while pos < end:
        nl = text.find("\n", pos, end)
        stop = end if nl == -1 else nl
        if stop - group_start > limit and pos > group_start:
            groups.append((group_start, pos - 1))
            group_start = pos
        pos = stop + 1
    groups.append((group_start, end))
    return [g for piece in groups for g in _split_long(text, *piece, limit) if text[g[0]:g[1]].strip()]


def heading_path(stack: list[tuple[int, str]]) -> str:
    return " > ".join(label for _, label in stack if label)


def chunk_document(doc: Document, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Chunks of at most max_chars inside each block (sentences of a paragraph grouped; lines of code or
    of a table grouped), each carrying the heading path above it. A heading alone is never a chunk; a block
    that is a fragment joins a neighbour's chunk (_fragments_merged)."""
    text = doc.text
    blocks = doc.blocks or read_txt(text).blocks
    stack: list[tuple[int, str]] = []  # (level, label) of the headings above
    section = 0  # counts headings: pieces of one section sit between the same two headings
    pieces: list[_Piece] = []
    for block in blocks:
        if block.kind == "heading":
            stack = [h for h in stack if h[0] < block.level] + [(block.level, heading_label(text, block))]
            section += 1
            continue
        if block.kind == "text":
            spans = []
            group: tuple[int, int] | None = None
            for s, e in split_sentences(text, block.start, block.end):
                for ps, pe in _split_long(text, s, e, max_chars):
                    if group and pe - group[0] <= max_chars:
                        group = (group[0], pe)
                        continue
                    if group:
                        spans.append(group)
                    group = (ps, pe)
            if group:
                spans.append(group)
        else:
            spans = _line_groups(text, block.start, block.end, max_chars)
        path = heading_path(stack)
        pieces += [_Piece(s, e, path, section, block) for s, e in spans]
    return [Chunk(make_chunk_id(doc.source, doc.doc_hash, p.start, p.end), doc.source, p.start, p.end,
                  text[p.start:p.end], p.path, p.block.page, p.block.columns, p.block.kind == "table")
            for p in _fragments_merged(text, pieces, max_chars)]


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    path: str
    section: int
    block: Block


def _fragments_merged(text: str, pieces: list[_Piece], max_chars: int) -> list[_Piece]:
    """A fragment (is_fragment: a chart label, a lone code line, a footnote's URL) joined to the chunk before it,
    or after it, of the same section and page, where the two fit in max_chars. Alone, such a chunk was found by
    nothing and read as nothing: on the blind PDFs 11.6% of the units the answerer read were fragments, all of
    them chunks of their own. Tables keep their rows apart; only whitespace may lie between the two."""
    def joinable(a: _Piece, b: _Piece) -> bool:
        first, second = text[a.start:a.end], text[b.start:b.end]
        return (a.section == b.section and a.block.page == b.block.page and b.end - a.start <= max_chars
                and not text[a.end:b.start].strip() and (is_fragment(first) or is_fragment(second))
                and not reads_as_rows(first, a.block.kind == "table")
                and not reads_as_rows(second, b.block.kind == "table") and not reads_as_rows(text[a.start:b.end]))

    out: list[_Piece] = []
    for piece in pieces:
        if out and joinable(out[-1], piece):
            out[-1] = replace(out[-1], end=piece.end)
        else:
            out.append(piece)
    return out


def line_number(text: str, offset: int) -> int:
    """1-based line of a character offset."""
    return text.count("\n", 0, offset) + 1
