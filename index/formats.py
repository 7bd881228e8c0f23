"""Readers per file format: bytes in, canonical text and its blocks out.

A block is a heading, a paragraph, a code block or a table, with exact offsets into the
canonical text. Plain text and Markdown keep the file's own text as canonical (offsets point
into what the user wrote); HTML, PDF and Word have their text extracted, and the canonical
text is the extracted blocks joined by blank lines. Parsing is left to libraries made for
each format (markdown-it-py, selectolax, pypdf, python-docx).
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    start: int
    end: int
    kind: str  # "heading", "text", "code" or "table"
    level: int = 0  # heading depth, 1 = top
    page: int | None = None  # PDF page, 1-based
    columns: str = ""  # a table's column headers, "Option | Default | Meaning", for its rows (see index.chunk)


class Unreadable(Exception):
    """The file cannot be read as its format says; the message is the reason shown to the user."""


@dataclass
class Parsed:
    text: str
    blocks: list[Block]
    notes: list[str]  # things the user should know, e.g. a PDF page without text


def trim_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


# -- plain text ---------------------------------------------------------------------------------------

_TERMINAL = re.compile(r"""[.!?:;'"\u2019\u201d)\]]\s*$""")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+\S")
_NUMBERED_HEADING = re.compile(r"^\s*(\d+(?:\.\d+)*)\.?\s+\S")
_UNDERLINE = re.compile(r"^\s*(=+|-+|~+)\s*$")
WRAP_WIDTH = 100  # lines at most this long, in a block of several, are a hard-wrapped paragraph


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # CR alone too: old Mac files ran every paragraph into one sentence


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each line in text[start:end], without its line break."""
    out, pos = [], start
    for brk in _LINE_BREAK.finditer(text, start, end):
        out.append((pos, brk.start()))
        pos = brk.end()
    out.append((pos, end))
    return out


def _paragraphs_of_group(text: str, lines: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Paragraphs in a group of lines with no blank line between them.

    Short lines are a hard wrap: the paragraph goes on. Long lines (one paragraph a line, as in
    many exported articles) end a paragraph where the sentence ends. A list item starts a paragraph.
    """
    lengths = [e - s for s, e in lines]
    wrapped = len(lines) > 1 and max(lengths[:-1]) <= WRAP_WIDTH
    width = max(lengths)
    spans, start = [], lines[0][0]
    for i, (s, e) in enumerate(lines):
        last = i + 1 == len(lines)
        nxt = text[lines[i + 1][0]:lines[i + 1][1]] if not last else ""
        line = text[s:e]
        if last:
            breaks = True
        elif _LIST_ITEM.match(nxt) or _UNDERLINE.match(nxt) or _UNDERLINE.match(line):
            breaks = True
        elif wrapped:  # a line well short of the width, before a capital, ends a paragraph (or is a title)
            breaks = len(line.strip()) < 0.6 * width and (nxt.lstrip()[:1].isupper() or nxt.lstrip()[:1].isdigit())
        else:  # one paragraph a line, unless this line stops mid-sentence
            breaks = not (line.strip() and nxt.lstrip()[:1].islower() and not _TERMINAL.search(line))
        if breaks:
            span = trim_span(text, start, e)
            if span:
                spans.append(span)
            if not last:
                start = lines[i + 1][0]
    return spans


def _depth(line: str) -> int:
    numbered = _NUMBERED_HEADING.match(line)
    return len(numbered.group(1).split(".")) if numbered else 0


def _heading_level(line: str, first: bool, following: str) -> int:
    """A heading's level, or 0 for an ordinary paragraph: a single short line without sentence punctuation
    that is numbered ("2.3 Contributor", unless the next line is numbered alike: a list), in capitals,
    underlined, or the document's first line."""
    if "\n" in line or len(line) > 80 or len(line.split()) > 12 or re.search(r"[.,;!?]$", line):
        return 0
    if _UNDERLINE.match(following):
        return 1 if following.strip()[0] == "=" else 2
    depth = _depth(line)
    if depth and depth != _depth(following):
        return min(depth, 6)
    letters = [c for c in line if c.isalpha()]
    if not depth and len(letters) >= 3 and sum(c.isupper() for c in letters) / len(letters) > 0.8:
        return 1
    return 1 if first and not depth else 0


def read_txt(text: str) -> Parsed:
    """Plain text: blank lines end paragraphs, a single line break is a wrap (or, in one-paragraph-a-line
    files, a paragraph end); short unpunctuated lines that are numbered, capitalised, underlined or first
    are headings."""
    all_lines = _lines(text, 0, len(text))
    groups, current = [], []
    for s, e in all_lines:
        if text[s:e].strip():
            current.append((s, e))
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    blocks: list[Block] = []
    for g, lines in enumerate(groups):
        paragraphs = _paragraphs_of_group(text, lines)
        for p, span in enumerate(paragraphs):
            if _UNDERLINE.match(text[span[0]:span[1]]):
                continue  # a setext underline belongs to the heading above it
            if p + 1 < len(paragraphs):
                following = text[paragraphs[p + 1][0]:paragraphs[p + 1][1]]
            else:
                following = text[groups[g + 1][0][0]:groups[g + 1][0][1]] if g + 1 < len(groups) else ""
            has_body = bool(following) and (not _UNDERLINE.match(following) or p + 2 < len(paragraphs)
                                            or g + 1 < len(groups))
            level = _heading_level(text[span[0]:span[1]], not blocks, following) if has_body else 0
            blocks.append(Block(span[0], span[1], "heading" if level else "text", level))
    return Parsed(text, blocks, [])


# -- Markdown -----------------------------------------------------------------------------------------

_LINE_BREAK = re.compile(r"\r\n?|\n")
_FRONT_MATTER = re.compile(r"\A(?:---|\+\+\+)[ \t]*\r?\n.*?\r?\n(?:---|\+\+\+|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


def read_md(text: str) -> Parsed:
    """Markdown: the file's own text is canonical; markdown-it finds headings, paragraphs, list items,
    code blocks and tables (by line), and front matter is left out."""
    from markdown_it import MarkdownIt

    skip = _FRONT_MATTER.match(text)
    body_start = skip.end() if skip else 0
    # Lines as markdown-it counts them: a file with "\r" line ends (old Mac) was one line, one heading, no chunks.
    starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
    first_line = len(_LINE_BREAK.findall(text, 0, body_start))

    def span_of(line_range) -> tuple[int, int] | None:
        a, b = line_range[0] + first_line, line_range[1] + first_line
        end = starts[b] if b < len(starts) else len(text)
        return trim_span(text, starts[a], end) if a < len(starts) else None

    md = MarkdownIt("commonmark").enable("table").disable("inline")  # blocks are all we need: skip inline parsing
    tokens = md.parse(text[body_start:])
    blocks: list[Block] = []
    depth = 0  # inside a table, only the table block counts
    for tok in tokens:
        if tok.type == "table_open":
            depth += 1
            span = span_of(tok.map) if tok.map else None
            if span:
                header = _LINE_BREAK.split(text[span[0]:span[1]], 1)[0]  # its first line names its columns
                blocks.append(Block(*span, "table", columns=column_names(table_cells(header))))
        elif tok.type == "table_close":
            depth -= 1
        elif depth or not tok.map:
            continue
        elif tok.type == "heading_open":
            span = span_of(tok.map)
            if span:
                blocks.append(Block(*span, "heading", int(tok.tag[1:])))
        elif tok.type == "paragraph_open":
            span = span_of(tok.map)
            if span:
                blocks.append(Block(*span, "text"))
        elif tok.type in ("fence", "code_block"):
            span = span_of(tok.map)
            if span:
                blocks.append(Block(*span, "code"))
    if not any(b.kind != "heading" for b in blocks):
        def letters(part: str) -> int:
            return sum(ch.isalnum() for ch in part)

        if letters(text[body_start:]) > sum(letters(text[b.start:b.end]) for b in blocks):
            # Text markdown-it drops (inside blockquotes nested past its limit) is read as plain text, not lost.
            return read_txt(text)
    return Parsed(text, blocks, [])


MAX_COLUMNS_CHARS = 200  # every chunk of a table stores its column names: a huge header row must not multiply


def column_names(cells: list[str]) -> str:
    """A header row's cells as a table's stored column names, "Option | Default | Meaning"; "" past
    MAX_COLUMNS_CHARS (such a row is data, not names)."""
    names = " | ".join(cells)  # an empty name stays, so that names and cells line up (index.chunk.table_row_text)
    return names if len(names) <= MAX_COLUMNS_CHARS and any(cells) else ""


def split_cells(row: str) -> list[str]:
    """A row's cells split at its unescaped "|"s, with no outer pipes to take off first (a leading or trailing "|"
    here is an empty cell's): how rows (index.chunk.sentence_units) and stored column names are read."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)]


def table_cells(row: str) -> list[str]:
    """The cells of a table row as written in the canonical text: "| Height | 38 metres |" or "Height | 38 metres"."""
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return split_cells(row)


def heading_label(text: str, block: Block) -> str:
    """The words of a heading, without Markdown's # marks, underlines or surrounding space."""
    words = text[block.start:block.end].splitlines()[0] if block.kind == "heading" else ""
    return re.sub(r"^\s*#{1,6}\s*|\s*#+\s*$", "", words).strip()[:120]


# -- extracted formats: blocks joined by blank lines ---------------------------------------------------

def _joined(pieces: list[tuple]) -> Parsed:
    """Canonical text from (kind, text, level, page[, columns]) pieces, one blank line between blocks."""
    parts, blocks, pos = [], [], 0
    for kind, piece, level, page, *columns in pieces:
        piece = piece.strip()
        if not piece:
            continue
        if parts:
            parts.append("\n\n")
            pos += 2
        parts.append(piece)
        blocks.append(Block(pos, pos + len(piece), kind, level, page, *columns))
        pos += len(piece)
    return Parsed("".join(parts), blocks, [])


HTML_DROP = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe",
             "svg", "button", "select", "head", "title", "meta", "link")
_BOILERPLATE = re.compile(r"(^|[\s_-])(nav|navbar|menu|sidebar|sphinxsidebar|footer|breadcrumbs?|related|"
                          r"cookie|skip|toc|share|social)($|[\s_-])", re.I)
HTML_BLOCKS = {"p", "li", "dt", "dd", "pre", "blockquote", "figcaption", "caption", "td", "th", "div", "section",
               "article", "main", "body", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "address"}


MAX_HTML_DEPTH = 1_000  # real pages nest tens of elements deep; the HTML parser slows quadratically with depth
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*?(/?)>")
# Elements that never close, or whose end tag HTML lets a page leave out: they are not counted as nesting.
_UNNESTED = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
             "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot",
             "colgroup", "rt", "rp", "html", "head", "body"}


def nesting_depth(html: str) -> int:
    """How deep the page's elements nest, read from its tags in one pass (before the parser, which is slow
    on deep nesting: 100,000 nested <div>s took it 34 s)."""
    depth = deepest = 0
    for closing, name, self_closing in _TAG.findall(html):
        if self_closing or name.lower() in _UNNESTED:
            continue
        depth = max(depth - 1, 0) if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


def _html_columns(row, headers: dict[int, tuple[str, int | None]]) -> str:
    """The column headers of the table a row belongs to: its first row when that row is all <th> cells ("" for
    that row itself, and for a table without one). headers caches (columns, first row's id) by table."""
    table = row.parent
    while table is not None and table.tag != "table":
        table = table.parent
    if table is None:
        return ""
    if table.mem_id not in headers:
        first = table.css_first("tr")
        cells = [c for c in first.iter() if c.tag in ("td", "th")] if first is not None else []
        names = [re.sub(r"\s+", " ", c.text(deep=True)).strip() for c in cells]
        all_th = bool(cells) and all(c.tag == "th" for c in cells) and any(names)
        headers[table.mem_id] = (column_names(names) if all_th else "", first.mem_id if first is not None else None)
    columns, first_row = headers[table.mem_id]
    return "" if row.mem_id == first_row else columns


def read_html(data: bytes) -> Parsed:
    """HTML: the main content's headings, paragraphs, list items, code and table rows, as text.
    Scripts, styles, navigation, headers, footers and sidebars are left out."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    declared = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", data[:4096], re.I)
    try:
        html = data.decode(declared.group(1).decode() if declared else "utf-8")
    except (LookupError, UnicodeDecodeError):
        html = data.decode("utf-8", errors="replace")
    if nesting_depth(html) > MAX_HTML_DEPTH:
        raise Unreadable(f"HTML nested more than {MAX_HTML_DEPTH:,} elements deep")
    tree = HTMLParser(html)
    for node in tree.css(",".join(HTML_DROP) + ",[role=navigation],[aria-hidden=true]"):
        node.decompose()
    for node in tree.css("div,section,ul,ol,table,p"):
        if _BOILERPLATE.search(f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"):
            node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.css_first("[role=main]") or tree.body
    if root is None:
        raise Unreadable("HTML without a body")
    for node in root.css("br"):  # a line break, not nothing: "tall.<br>Line" ran two sentences into one
        node.replace_with("\n")
    pieces: list[list] = []  # [kind, text, level, row id, cell id, columns]
    headers: dict[int, tuple[str, int | None]] = {}  # see _html_columns
    for node in root.traverse(include_text=True):
        if node.tag != "-text":
            continue
        block = node.parent
        while block is not None and block.tag not in HTML_BLOCKS:
            block = block.parent
        if block is None:
            continue
        row = block.parent if block.tag in ("td", "th") and block.parent is not None else block
        kind, level = "text", 0
        if block.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            kind, level = "heading", int(block.tag[1])
        elif block.tag == "pre":
            kind = "code"
        elif row.tag == "tr":
            kind = "table"
        piece = node.text(deep=False) or ""
        if kind != "code":
            piece = re.sub(r"\s+", " ", piece)
        if pieces and pieces[-1][3] == row.mem_id:  # parts joined once at the end: += on one long row was quadratic
            if kind == "table" and pieces[-1][4] != block.mem_id and piece.strip():
                pieces[-1][1].append(" | ")  # a new cell (the row has text: it was started by some)
            pieces[-1][1].append(piece)
            pieces[-1][4] = block.mem_id if piece.strip() else pieces[-1][4]
        elif piece.strip():
            columns = _html_columns(row, headers) if kind == "table" else ""
            pieces.append([kind, [piece], level, row.mem_id, block.mem_id, columns])
    parsed = _joined([(k, re.sub(r" {2,}", " ", "".join(t)) if k != "code" else "".join(t), lvl, None, columns)
                      for k, t, lvl, _, _, columns in pieces])
    if not parsed.blocks:
        raise Unreadable("no text in the HTML")
    return parsed


# Typesetting ligatures (U+FB00-FB06: "ﬁ", "ﬂ", "ﬀ", ...) as the letters they stand for: "ﬁle" matched
# neither "file" in BM25 nor in the embedding.
_LIGATURES = {ch: unicodedata.normalize("NFKC", chr(ch)) for ch in range(0xFB00, 0xFB07)}
# Letters only on both sides: "from 8-\n12" is a range, not the number 812.
_HYPHEN_BREAK = re.compile(r"\b([^\W\d_]{1,40})-\n([^\W\d_]{1,40})\b")  # bounded, at word starts: linear
_WORD = re.compile(r"\w+")
_HYPHENATED = re.compile(r"\b[^\W\d_]{1,40}-[^\W\d_]{1,40}\b")
_BARE_PAGE_NUMBER = re.compile(r"[-\u2013\u2014 ]{0,3}(?:page )?(\d{1,4})(?: ?(?:of|/) ?\d{1,4})?[-\u2013\u2014 ]{0,3}",
                               re.I)  # "5", "- 5 -", "Page 5 of 9", "5/9"
_EDGE_NUMBER = re.compile(r"^(\d{1,4}) (?=\S)|(?<=\S) (\d{1,4})$")  # "7 Schwarz et al.", "Schwarz et al. 7"
EDGE_LINES = 2  # a page number above a running header: both go


def _edge_key(line: str, pages: int) -> str:
    """A line as a running header or footer is compared: spaces folded and a page number taken out, "#" for a
    bare one ("- 7 -") and at its start or end ("Schwarz et al. 7" is "Schwarz et al. #"); every other digit
    counts, so "Fee 350 EUR" and "Fee 400 EUR" are different lines. A page number is at most the page count +
    30 (front matter shifts numbering; "Invoice 1002" is no page)."""
    line = " ".join(line.split())
    bare = _BARE_PAGE_NUMBER.fullmatch(line)
    found = bare or _EDGE_NUMBER.search(line)
    if not found or not 0 < int(next(g for g in found.groups() if g)) <= pages + 30:
        return line
    if bare:
        return "#"
    return line[:found.start()] + (" #" if found.group(2) else "# ") + line[found.end():]


def _edges(lines: list[str]) -> tuple[list[int], list[int]]:
    """Indexes of a page's first and last EDGE_LINES non-blank lines, from the edge inwards."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return filled[:EDGE_LINES], filled[::-1][:EDGE_LINES]


def typeset_text_cleaned(pages: list[str]) -> list[str]:
    """Page texts as a person reads them: ligatures as letters, and running headers, footers and page numbers
    left out. A page's first or last lines go when they are a page number (the same kind of line at the same
    edge of half the pages or more) or a running line (the same line, page number aside, at the same edge of
    at least 3 pages and 40% of them: "Schwarz et al. 7", "draft"); a document of one page keeps every line.
    Kept at its first appearance, a running header became the heading of every chunk after it; a title equal
    to the running header goes with it, and a table's column headers only where they open a page."""
    pages = [page.replace("\r\n", "\n").replace("\r", "\n").translate(_LIGATURES) for page in pages]
    if len(pages) < 2:
        return pages
    split = [page.split("\n") for page in pages]
    # per page, per edge: (line index, key) from the edge inwards
    edge_keys = [[(edge, [(i, _edge_key(lines[i], len(pages))) for i in indexes])
                  for edge, indexes in zip(("top", "bottom"), _edges(lines))] for lines in split]
    counts = Counter((edge, key) for page in edge_keys for edge, keyed in page for key in {k for _, k in keyed})
    running = max(3, 0.4 * len(pages))
    numbered = max(2, 0.5 * len(pages))
    for lines, page in zip(split, edge_keys):
        for edge, keyed in page:
            for i, key in keyed:  # from the edge inwards: stop at the first line that is content
                if key == "#" and counts[edge, key] >= numbered:
                    lines[i] = ""
                elif key != "#" and counts[edge, key] >= running:
                    lines[i] = ""
                else:
                    break
    return ["\n".join(lines) for lines in split]


def hyphens_joined(text: str, words: Counter, hyphenated: set[str]) -> str:
    """A word hyphenated across a line break joined when the document uses the joined word elsewhere and not
    the hyphenated one ("proce-\ndure"; "well-\nknown" and "re-\nsort" keep their hyphens). On a block's text:
    joining lines before the paragraphs are found would make lines longer than a wrapped paragraph's, and each
    would read as a paragraph of its own."""
    def join(match: re.Match) -> str:
        whole = match[1] + match[2]
        if words[whole.lower()] and f"{match[1]}-{match[2]}".lower() not in hyphenated:
            return whole
        return match[0]

    return _HYPHEN_BREAK.sub(join, text)


_BOLD_FONT = re.compile(r"bold|black|heavy|demi|semibold|[-,+]bd\b|cmbx|cmb\d", re.I)  # CMBX12: TeX's bold
HEADING_SIZE = 1.15  # a line set this much larger than the body text is a heading
MAX_HEADING_WORDS = 15
MIN_BODY_WORDS = 6
LISTING_LINES = 3
_LINE_NUMBER = re.compile(r"\s*(\d{1,5})\s")
_SECTION_NUMBER = re.compile(r"^(?:[A-Z]|[IVX]{1,5}|\d{1,3})(?:\.\d{1,3})*\.?\s+")  # "2.3 ", "A.1 ", "IV. "
_CONTENTS_LINE = re.compile(r"\s*\.*\s*\d{1,4}$")  # "Introduction 1", "Bug fixes . . . 6": a table of contents


def _font_run_collector(runs: list[list]):
    """A pypdf visitor_text that appends the page's text to runs of one font: [pieces, size in points, bold]
    (pieces joined later: adding to one string made a page of many small runs quadratic). Whitespace (the line
    breaks pypdf writes between lines) goes with the run before it."""
    def visit(text, cm, tm, font, font_size) -> None:
        try:
            if runs and not text.strip():
                runs[-1][0].append(text)
                return
            size = round(font_size * math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3]) * 2) / 2
            bold = bool(_BOLD_FONT.search(str((font or {}).get("/BaseFont", ""))))
            if runs and runs[-1][1:] == [size, bold]:
                runs[-1][0].append(text)
            else:
                runs.append([[text], size, bold])
        except Exception:  # noqa: BLE001 (an odd font or matrix costs its line's heading, never the page)
            pass
    return visit


def font_headings(runs: list[list[list]]) -> dict[str, tuple[int, bool]]:
    """The document's heading lines by their type, space-folded text -> (level, set in bold at body size):
    whole lines of a run set HEADING_SIZE larger than the body text (the size most letters are set in), the
    largest size level 1, the next 2 ...; or in bold at body size (unless most body text is bold), one level
    below those. Not a heading: a line with fewer than three letters or more than MAX_HEADING_WORDS words;
    one ending in ",", ";", "." or "!", or holding a digit past its section number ("Office hours 9 to 5" set
    large is a fact to cite, and a heading is never cited); a contents line (a heading's words and a page
    number)."""
    letters: Counter = Counter()
    for page in runs:
        for pieces, size, bold in page:
            letters[size, bold] += sum(ch.isalpha() for piece in pieces for ch in piece)
    if not letters:
        return {}
    by_size: Counter = Counter()
    for (size, _), count in letters.items():
        by_size[size] += count
    body = by_size.most_common(1)[0][0]
    bold_marks = letters[body, True] < letters[body, False]  # an all-bold document has no bold headings
    found: dict[str, float] = {}
    for page in runs:
        for pieces, size, bold in page:
            if size < body * HEADING_SIZE and not (bold and bold_marks and size >= body * 0.95):
                continue
            for line in "".join(pieces).translate(_LIGATURES).split("\n"):  # as the page text is cleaned
                key = " ".join(line.split())
                if (sum(ch.isalpha() for ch in key) >= 3 and len(key.split()) <= MAX_HEADING_WORDS
                        and not key.endswith((",", ";", ".", "!"))
                        and not any(ch.isdigit() for ch in _SECTION_NUMBER.sub("", key, count=1))):
                    found[key] = max(found.get(key, 0.0), size if size >= body * HEADING_SIZE else 0.0)
    contents = {key for key in found if (bare := _CONTENTS_LINE.sub("", key)) != key and bare in found}
    sizes = sorted({size for key, size in found.items() if size and key not in contents}, reverse=True)
    levels = {size: min(i + 1, 6) for i, size in enumerate(sizes)}
    return {key: (levels[size], False) if size else (min(len(sizes) + 1, 6), True)
            for key, size in found.items() if key not in contents}


def _heading_lines(text: str, lines: list[tuple[int, int]], headings: dict[str, tuple[int, bool]]) -> dict[int, int]:
    """Start -> level of the page's lines that are headings: a font_headings line that starts after a sentence
    end (or a short last line, or another heading) and before a line that does not go on in lower case (a bold
    phrase wrapped inside a paragraph is no heading); alone, or two in a row that go down a level ("1 Basics",
    "1.1 Loading"), as more lines in a row are a list or a flyer; a bold one only above a line of MIN_BODY_WORDS
    words (bold table cells are no headings)."""
    found = [headings.get(" ".join(text[s:e].split())) for s, e in lines]
    width = max((e - s for s, e in lines), default=0)
    out: dict[int, int] = {}
    i = 0
    while i < len(lines):
        if not found[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(lines) and found[j + 1]:
            j += 1
        after = text[lines[j + 1][0]:lines[j + 1][1]].strip() if j + 1 < len(lines) else ""
        before = text[lines[i - 1][0]:lines[i - 1][1]].rstrip() if i else ""
        starts = not before or before.endswith((".", "!", "?", ":")) or len(before) < 0.6 * width
        alone = j == i or (j == i + 1 and found[i][0] < found[j][0])
        bold_ok = not found[j][1] or len(after.split()) >= MIN_BODY_WORDS
        if starts and alone and bold_ok and not after[:1].islower():
            out.update((lines[k][0], found[k][0]) for k in range(i, j + 1))
        i = j + 1
    return out


def _listing_lines(text: str, lines: list[tuple[int, int]]) -> set[int]:
    """Starts of the lines of listings with line numbers ("104 \\else", "105 \\fi"): LISTING_LINES or more
    lines in a row, each opening with a number 1-3 above the line before's, and at most a third of them ending
    like prose, in "." or "," (a paragraph of years, "2019 revenue was ...", or of counts wrapped at a number
    is no listing)."""
    found: set[int] = set()
    run: list[tuple[int, int]] = []
    last = 0
    for s, e in lines + [(len(text), len(text))]:
        number = _LINE_NUMBER.match(text[s:e] + " ")
        value = int(number[1]) if number else None
        if value is not None and run and 1 <= value - last <= 3:
            run.append((s, e))
        else:
            prose = sum(text[rs:re_].rstrip().endswith((".", ",")) for rs, re_ in run)
            if len(run) >= LISTING_LINES and prose * 3 <= len(run):
                found.update(rs for rs, _ in run)
            run = [(s, e)] if value is not None else []
        last = value if value is not None else 0
    return found


def _pdf_blocks(page_text: str, headings: dict[str, tuple[int, bool]]) -> list[tuple[str, str, int]]:
    """(kind, text, level) of a page's blocks: as in plain text, except that a line set as a heading
    (_heading_lines) is one, and a listing's numbered lines are one code block, wherever the plain-text reading
    put them (a heading line ran on from the paragraph above when that paragraph's last line was long)."""
    lines = [(s, e) for s, e in _lines(page_text, 0, len(page_text)) if page_text[s:e].strip()]
    listing = _listing_lines(page_text, lines)
    heading_at = _heading_lines(page_text, lines, headings)
    items: list[list] = []  # [kind, start, end, level]
    for block in read_txt(page_text).blocks:
        if block.kind not in ("text", "heading"):
            items.append([block.kind, block.start, block.end, block.level])
            continue
        piece = None  # the block's lines since the last heading or listing line
        for s, e in _lines(page_text, block.start, block.end):
            if s in listing and items and items[-1][0] == "code" and piece is None:
                items[-1][2] = e
            elif s in listing:
                items.append(["code", s, e, 0])
            elif s in heading_at and block.kind == "text":
                items.append(["heading", s, e, heading_at[s]])
            elif piece is not None:
                piece[2] = e
                continue
            else:
                piece = [block.kind, s, e, block.level]
                items.append(piece)
                continue
            piece = None
    out = []
    for kind, start, end, level in items:
        span = trim_span(page_text, start, end)
        if span:
            out.append((kind, page_text[span[0]:span[1]], level))
    return out


def read_pdf(data: bytes) -> Parsed:
    """PDF: the text of each page (paragraphs as in plain text), each block tagged with its page.
    A page without a text layer (a scan) is reported, not silently left out."""
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings would print beside ours
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Unreadable("encrypted PDF")
        runs: list[list[list]] = []  # per page: [pieces, size, bold] runs of one font (see font_headings)
        pages = []
        for page in reader.pages:
            runs.append([])
            pages.append(page.extract_text(visitor_text=_font_run_collector(runs[-1])) or "")
    except Unreadable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Unreadable(f"unreadable PDF ({type(exc).__name__})") from exc
    pieces, notes = [], []
    headings = font_headings(runs)
    for number, (raw, page_text) in enumerate(zip(pages, typeset_text_cleaned(pages)), start=1):
        if not raw.strip():
            notes.append(f"page {number} has no text layer (a scan?); it is not indexed")
            continue
        pieces += [(kind, piece, level, number) for kind, piece, level in _pdf_blocks(page_text, headings)]
    texts = [piece for _, piece, _, _ in pieces]
    words = Counter(w.lower() for text in texts for w in _WORD.findall(text))
    hyphenated = {w.lower() for text in texts for w in _HYPHENATED.findall(text)}
    pieces = [(kind, hyphens_joined(piece, words, hyphenated), level, page) for kind, piece, level, page in pieces]
    if not pieces:
        raise Unreadable("no text in the PDF (scanned pages only?)")
    parsed = _joined(pieces)
    parsed.notes = notes
    return parsed


MAX_UNPACKED_BYTES = 50_000_000  # a .docx whose parts unpack to more is not parsed
MAX_PACKED_RATIO = 100  # nor one with a large part compressed more than this (a zip bomb)


def packed_too_tightly(info, min_bytes: int, ratio: int) -> bool:
    """A zip entry over min_bytes that its header says unpacks to more than ratio times its packed size."""
    return info.file_size > min_bytes and info.file_size > ratio * max(info.compress_size, 1)


def check_unpacked_size(archive) -> None:
    """Unreadable when a zip-based document unpacks to more than we would ever index (read from its headers)."""
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if packed_too_tightly(info, 1_000_000, MAX_PACKED_RATIO):
            raise Unreadable(f"{info.filename} is compressed {info.file_size // max(info.compress_size, 1)}:1 "
                             "(a zip bomb?)")
    if total > MAX_UNPACKED_BYTES:
        raise Unreadable(f"unpacks to more than {MAX_UNPACKED_BYTES // 1_000_000} MB")


def _docx_header_row(row) -> bool:
    """A Word table's first row names its columns when Word marks it as the header row (repeated on each page)
    or all its text is bold; a key-value table ("Height | 38 metres") has neither."""
    if row._tr.xpath("./w:trPr/w:tblHeader"):
        return True
    runs = [r for c in row.cells for p in c.paragraphs for r in p.runs if r.text.strip()]
    return bool(runs) and all(r.bold for r in runs)


def read_docx(data: bytes) -> Parsed:
    """Word: paragraphs in order, "Title" and "Heading N" styles as headings, table rows as text."""
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from lxml.etree import LxmlError

    try:
        check_unpacked_size(zipfile.ZipFile(io.BytesIO(data)))
        document = docx.Document(io.BytesIO(data))
        items = list(document.iter_inner_content())
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, LxmlError) as exc:  # lxml: broken XML
        raise Unreadable(f"not a valid .docx ({type(exc).__name__})") from exc
    pieces = []
    for item in items:
        if isinstance(item, Table):
            columns = ""  # a header row names the columns of the rows below it
            for n, row in enumerate(item.rows):
                cells = " | ".join(dict.fromkeys(c.text.strip() for c in row.cells if c.text.strip()))
                pieces.append(("table", cells, 0, None, columns))
                if n == 0 and _docx_header_row(row):
                    columns = column_names([c.text.strip() for c in row.cells])
            continue
        style = (item.style.name if item.style is not None else "") or ""
        match = re.match(r"Heading (\d)", style)
        if style == "Title" or match:  # the title is the root; "Heading 1" sits under it
            pieces.append(("heading", item.text, int(match.group(1)) + 1 if match else 1, None))
        else:
            pieces.append(("text", item.text, 0, None))
    parsed = _joined(pieces)
    if not parsed.blocks:
        raise Unreadable("no text in the document")
    return parsed


TEXT_SUFFIXES = {".txt", ".text", ".rst", ""}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}
