"""Read a folder of documents (.txt, .md, .html, .pdf, .docx) into canonical text and blocks; skip what
cannot be read, with a reason."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import NotFoundError
from .isolate import ISOLATED_SUFFIXES, ParseCache, ParseLimit, parse_isolated
from .text import is_utf8
from .formats import (HTML_SUFFIXES, MARKDOWN_SUFFIXES, SUFFIXES, Block, Parsed, Unreadable, read_docx, read_html,
                      read_md, read_pdf, read_txt)

MAX_FILE_BYTES = 20_000_000


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the corpus root, POSIX separators
    doc_hash: str  # sha256 of the file's bytes
    text: str  # canonical text
    blocks: tuple[Block, ...] = ()  # headings, paragraphs, code, tables: offsets into text (empty: parse as .txt)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def canonical_text(data: bytes) -> str:
    """The canonical text of a UTF-8 file: decoded exactly, newlines kept as written, BOM dropped.

    Same as open(path, encoding="utf-8", newline="").read() with a leading BOM stripped.
    Raises UnicodeDecodeError for bytes that are not UTF-8.
    """
    text = data.decode("utf-8")
    return text[1:] if text.startswith("\ufeff") else text


def parse(suffix: str, data: bytes) -> Parsed:
    """Canonical text and blocks of a file's bytes, by format; Unreadable (or UnicodeDecodeError) if it cannot be."""
    if suffix == ".pdf":
        return read_pdf(data)
    if suffix == ".docx":
        return read_docx(data)
    if suffix in HTML_SUFFIXES:
        return read_html(data)
    if b"\x00" in data[:8192]:
        raise Unreadable("binary file")
    text = canonical_text(data)
    return read_md(text) if suffix in MARKDOWN_SUFFIXES else read_txt(text)


def read_document(path: Path, source: str, cache: ParseCache | None = None) -> tuple[Document | Skipped, list[Skipped]]:
    """Load one file, or say why it was skipped (binary, not UTF-8, empty, too large, broken); plus notes.
    cache: where PDF and .docx files already parsed are found by their bytes' hash."""
    try:
        with path.open("rb") as f:  # at most one byte past the limit: a sparse 3 GB file took 3 GB of memory
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return Skipped(source, f"unreadable ({exc.strerror})"), []
    if len(data) > MAX_FILE_BYTES:
        return Skipped(source, f"larger than {MAX_FILE_BYTES // 1_000_000} MB"), []
    suffix, digest = path.suffix.lower(), hashlib.sha256(data).hexdigest()
    try:
        if suffix in ISOLATED_SUFFIXES:
            parsed = cache.get(digest) if cache else None
            if parsed is None:
                parsed = parse_isolated(suffix, data)
                if cache:
                    cache.put(digest, parsed)
        else:
            parsed = parse(suffix, data)
    except ParseLimit as exc:
        return Skipped(source, str(exc)), []
    except UnicodeDecodeError as exc:
        return Skipped(source, f"not UTF-8 (byte {exc.start})"), []
    except Unreadable as exc:
        return Skipped(source, str(exc)), []
    except Exception as exc:  # noqa: BLE001 -- a parser library failing on one odd file must not stop the others
        return Skipped(source, f"could not be read ({type(exc).__name__})"), []
    if not parsed.text.strip() or not any(b.kind != "heading" for b in parsed.blocks):
        return Skipped(source, "empty"), []
    document = Document(source=source, doc_hash=digest, text=parsed.text,
                        blocks=tuple(parsed.blocks))
    return document, [Skipped(source, note) for note in parsed.notes]


def _has_control_chars(name: str) -> bool:
    """Control characters, and the invisible ones that change how a name reads (U+202E turns "gnp.md" into
    "dm.png"; zero-width spaces, byte-order marks, line and paragraph separators)."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 or unicodedata.category(ch) in ("Cf", "Zl", "Zp")
               for ch in name)


def list_files(root: Path) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """(path, source) for every candidate file under root, sorted by source, and the files refused.

    Hidden files are skipped silently. Links are never followed out of the corpus: a symbolic link
    whose target lies outside root is refused (it could expose any file the indexer can read), and
    linked folders are not entered. A name with control characters is refused (it would break
    line-based output such as `qa source --list`).
    """
    if not root.exists():
        raise NotFoundError(f"No such file or folder: {root}")
    if root.is_file():
        return [(root, root.name)], []
    real_root = root.resolve()
    found, refused = [], []
    def unreadable(exc: OSError) -> None:  # its documents would vanish from the index without a word
        where = Path(exc.filename or root)
        shown = where.relative_to(root).as_posix() if where != root and where.is_relative_to(root) else str(where)
        refused.append(Skipped(shown + "/", f"folder cannot be read ({exc.strerror or exc})"))

    for folder, dirs, files in _walk(root, unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(folder) / name
            source = path.relative_to(root).as_posix()
            if name.startswith("."):
                continue
            if _has_control_chars(source):
                refused.append(Skipped(ascii(source)[1:-1], "file name contains control or invisible characters"))
            elif not is_utf8(source):
                refused.append(Skipped(ascii(source)[1:-1], "file name is not valid UTF-8"))
            elif path.is_symlink() and not _links_inside(path, real_root):
                refused.append(Skipped(source, "symbolic link to a file outside the corpus, or a link loop"))
            elif path.is_file():
                found.append((path, source))
    return sorted(found, key=lambda item: item[1]), refused


def _walk(root: Path, onerror):
    """os.walk (top down, links to folders listed but not entered) without recursion: on Python 3.11 os.walk
    recurses per level, so a corpus some 1,000 folders deep stopped `qa index` with a RecursionError."""
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as scan:
                entries = list(scan)
        except OSError as exc:
            onerror(exc)
            continue
        dirs, files, linked = [], [], set()
        for entry in entries:  # one look at each entry (a DirEntry keeps what it read)
            if _is_dir(entry):
                dirs.append(entry.name)
                if entry.is_symlink():
                    linked.add(entry.name)
            else:
                files.append(entry.name)
        yield folder, dirs, files
        stack.extend(os.path.join(folder, d) for d in reversed(dirs) if d not in linked)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _links_inside(path: Path, real_root: Path) -> bool:
    """Whether a symbolic link ends inside the corpus (a link loop ends nowhere: Python 3.11 raises RuntimeError)."""
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):
        return False


def load_corpus(root: Path, progress=None, cache: ParseCache | None = None) -> tuple[list[Document], list[Skipped]]:
    """Every readable text document under root, and the files skipped with their reasons.

    progress, if given, receives an index.progress.IndexEvent per file read and per file skipped; cache keeps
    what PDF and .docx files parsed to (the index run's, in its folder).
    """
    from .progress import IndexEvent

    def report(event: IndexEvent) -> None:
        if progress:
            progress(event)

    files, skipped = list_files(root)
    report(IndexEvent("reading", 0, len(files)))
    for skip in skipped:
        report(IndexEvent("skipped", skipped=skip))
    documents = []
    for done, (path, source) in enumerate(files, 1):
        if path.suffix.lower() not in SUFFIXES:
            found = [Skipped(source, f"unsupported file type {path.suffix!r}")]
        else:
            result, found = read_document(path, source, cache)
            if isinstance(result, Document):
                documents.append(result)
            else:
                found = [result, *found]
        for skip in found:
            report(IndexEvent("skipped", skipped=skip))
        skipped += found
        report(IndexEvent("reading", done, len(files)))
    return documents, sorted(skipped, key=lambda s: s.path)
