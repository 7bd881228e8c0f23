"""Documents added from the browser: saved into an upload collection's own folder, then indexed.

An upload collection's corpus is `<collection folder>/files` (index.collections.uploads_dir). Only such
collections are written to: a collection made from a user's folder (the default one on seeds/ included)
is never touched; its documents are added by copying them into that folder and re-indexing.

Every name is sanitised (basename, NFC, no control characters, no leading dot, a length cap, a type the
loader reads) and every target path is resolved and checked to lie inside the uploads folder. A .zip is
unpacked entry by entry: regular files only, no absolute paths, no `..`, no links, capped in entries and
in uncompressed bytes (a zip bomb stops at the cap, however its headers lie).
"""

from __future__ import annotations

import io
import os
import sqlite3
import stat
import threading
import time
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .build import IndexReport, build_index, index_lock
from .collections import (COLLECTIONS_DIR, DEFAULT_COLLECTION, UPLOADS_DIR, _read_store, check_name, collection_dir,
                          uploads_dir)
from .config import Settings
from .errors import NotFoundError, UsageError
from .formats import SUFFIXES, packed_too_tightly
from .isolate import ISOLATED_SUFFIXES, Cancelled, cancelled, parse_budget, seconds_for
from .load import MAX_FILE_BYTES, Skipped, _has_control_chars
from .progress import Progress

# Uploads and removals in this process run one at a time, whichever route or thread calls them: parallel
# calls each parsed and embedded at once (12 PDFs took the server from 0.8 to 3.3 GB), and the quota check
# could not see what a parallel call was about to write (six calls under a 1 MB quota left 5 MB).
_ONE_AT_A_TIME = threading.Lock()


def one_at_a_time(work):
    """Run `work` holding the process's upload lock (callers queue; nothing is refused for waiting)."""
    from functools import wraps

    @wraps(work)
    def locked(*args, **kwargs):
        with _ONE_AT_A_TIME:
            return work(*args, **kwargs)

    return locked


def _env_mb(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name) or default)
    except ValueError:
        value = default
    return max(1, value) * 1_000_000


MAX_UPLOAD_BYTES = _env_mb("QA_MAX_UPLOAD_MB", 50)  # one uploaded file (a .zip included)
MAX_REQUEST_BYTES = _env_mb("QA_MAX_UPLOAD_REQUEST_MB", 200)  # one upload request; also a zip's unpacked total
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_RATIO = 50  # text compresses 3-10:1; far more than this is filler meant to fill the disk
MAX_UPLOADS_TOTAL_BYTES = _env_mb("QA_MAX_UPLOADS_TOTAL_MB", 2000)  # all upload collections together
MAX_NAME_BYTES = 200  # per path component, below every file system's 255
MAX_DEPTH = 8  # sub-folders kept from a zip
ZIP_SUFFIX = ".zip"

Upload = tuple[str, "bytes | Path"]  # (the name the user gave, the bytes or a file holding them)


@dataclass
class Added:
    """What add_files did: the sources saved (relative to the uploads folder), the files refused and why."""

    saved: list[str] = field(default_factory=list)
    refused: list[Skipped] = field(default_factory=list)


def _shown(name: str) -> str:
    """A name safe to show on one line (control characters escaped)."""
    return ascii(name)[1:-1] if _has_control_chars(name) else name


def clean_component(part: str) -> str:
    """One path component, NFC; UsageError with the reason when it cannot be a document's name."""
    part = unicodedata.normalize("NFC", part)
    if part in ("", ".", ".."):
        raise UsageError("not a file name")
    if _has_control_chars(part):
        raise UsageError("file name contains control or invisible characters")
    if part.startswith("."):
        raise UsageError("hidden files (names starting with '.') are not indexed")
    if "/" in part or "\\" in part:
        raise UsageError("file name contains a path separator")
    try:
        size = len(part.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError("file name is not valid UTF-8") from None
    if size > MAX_NAME_BYTES:
        raise UsageError(f"file name longer than {MAX_NAME_BYTES} bytes")
    return part


def clean_name(name: str, keep_folders: bool = False) -> str:
    """The source a user-given name is saved as, or UsageError with the reason (the loader's, where it has one).

    Without keep_folders only the basename counts ("../../x.md" is "x.md"); with it (zip entries) every
    component must be clean, and absolute paths and ".." are refused outright.
    """
    if not isinstance(name, str):
        raise UsageError("not a file name")
    if keep_folders:
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise UsageError("absolute path in the zip")
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UsageError("'..' in the zip path")
        if len(parts) > MAX_DEPTH + 1:
            raise UsageError(f"more than {MAX_DEPTH} folders deep")
    else:
        parts = [name.replace("\\", "/").rsplit("/", 1)[-1]]
    parts = [clean_component(p) for p in parts] or [clean_component("")]
    suffix = Path(parts[-1]).suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"unsupported file type {suffix!r}")
    return "/".join(parts)


def _collection_corpus(settings: Settings, name: str) -> str:
    index_dir = collection_dir(settings.index_dir, name)
    found = _read_store(index_dir)
    if found is None and (index_dir / "index.sqlite").is_file():
        # Unreadable is not "made from uploads": writing into it could replace a folder collection's index.
        raise UsageError(f"collection {name!r} cannot be read: run `qa index --collection {name}` to repair it")
    return found[0].get("corpus", "") if found else ""


def check_upload_collection(settings: Settings, name: str) -> Path:
    """The uploads folder of collection `name` (made on first upload), or a UsageError saying why it is refused.

    settings is the index root's. A collection made from a folder is never written to.
    """
    name = check_name(name)
    folder = uploads_dir(settings.index_dir, name)
    # Written to and deleted from: a link put in place of the folder (or of its collection's folder) would
    # aim those writes and deletes at files elsewhere, which every check "inside the folder" then follows.
    if folder.is_symlink() or folder.parent.is_symlink():
        raise UsageError(f"collection {name!r}: its folder in the index is a link; uploads go into a real folder "
                         f"only (delete the collection or the link)")
    corpus = settings.corpus.resolve() if name == DEFAULT_COLLECTION else None
    recorded = _collection_corpus(settings, name)
    if recorded and Path(recorded) != folder.resolve():
        corpus = Path(recorded)
    if corpus is not None:
        how = "`qa index`" if name == DEFAULT_COLLECTION else f"`qa index --collection {name}`"
        # The folder by its name only: this is said to web clients, who have no business with the host's paths.
        raise UsageError(f"collection {name!r} indexes a folder ({corpus.name}/): add files to that folder and run "
                         f"{how}; uploads go into a collection of their own (type a new name)")
    return folder


def is_upload_collection(settings: Settings, name: str) -> bool:
    try:
        check_upload_collection(settings, name)
    except UsageError:
        return False
    return True


def _inside(path: Path, root: Path) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


def _write(folder: Path, source: str, data: bytes) -> None:
    """Write data as folder/source, replacing what is there; never outside folder (every step resolved)."""
    target = folder.joinpath(*source.split("/"))
    parent = target.parent
    for step in [*reversed(parent.relative_to(folder).parents), parent.relative_to(folder)]:
        here = folder / step
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise UsageError("a file or link of that name is in the way")
        here.mkdir(exist_ok=True)
    if not (_inside(target.parent, folder) or target.parent.resolve() == folder.resolve()):
        raise UsageError("would be written outside the collection's folder")
    if target.is_symlink() or target.is_dir():
        raise UsageError("a folder or link of that name is in the way")
    temp = target.parent / f".upload-{uuid.uuid4().hex}.part"  # hidden: never indexed half-written
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _read_capped(source: Path | bytes, limit: int) -> bytes | None:
    """The bytes, or None when there are more than limit."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source) if len(source) <= limit else None
    with open(source, "rb") as f:
        data = f.read(limit + 1)
    return data if len(data) <= limit else None


def _is_link_or_special(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG)


def unpack_zip(data: bytes, zip_name: str) -> tuple[list[tuple[str, bytes]], list[Skipped]]:
    """(source, bytes) of each document in a zip, and the entries refused with their reasons."""
    found, refused = [], []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        return [], [Skipped(zip_name, "not a valid zip file")]
    with archive:
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if len(entries) > MAX_ZIP_ENTRIES:
            return [], [Skipped(zip_name, f"more than {MAX_ZIP_ENTRIES} files in the zip")]
        total = 0
        for info in entries:
            shown = f"{zip_name}:{_shown(info.filename)}"
            parts = info.filename.replace("\\", "/").split("/")
            if parts[0] == "__MACOSX" or parts[-1].startswith("."):
                continue  # macOS resource forks and hidden files: never documents
            try:
                source = clean_name(info.filename, keep_folders=True)
            except UsageError as exc:
                refused.append(Skipped(shown, str(exc)))
                continue
            if _is_link_or_special(info):
                refused.append(Skipped(shown, "a link or special file, not a regular file"))
                continue
            if info.flag_bits & 0x1:
                refused.append(Skipped(shown, "encrypted"))
                continue
            if info.file_size > MAX_FILE_BYTES:
                refused.append(Skipped(shown, f"larger than {MAX_FILE_BYTES // 1_000_000} MB"))
                continue
            if packed_too_tightly(info, 100_000, MAX_ZIP_RATIO):
                refused.append(Skipped(shown, f"compressed more than {MAX_ZIP_RATIO}:1 (a zip bomb?)"))
                continue
            if total + info.file_size > MAX_REQUEST_BYTES:
                refused.append(Skipped(shown, f"the zip unpacks to more than {MAX_REQUEST_BYTES // 1_000_000} MB"))
                break
            try:
                with archive.open(info) as member:  # the header's size may lie: read at most the cap
                    content = member.read(min(MAX_FILE_BYTES, MAX_REQUEST_BYTES - total) + 1)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
                refused.append(Skipped(shown, f"cannot be unpacked ({exc})"))
                continue
            if len(content) > MAX_FILE_BYTES or total + len(content) > MAX_REQUEST_BYTES:
                refused.append(Skipped(shown, "unpacks to more than its header says (a zip bomb?)"))
                break
            total += len(content)
            found.append((source, content))
    return found, refused


def uploads_in_use(settings: Settings) -> int:
    """Bytes on disk of the upload collections, their documents and their indexes together: counting the
    documents alone let a 45-byte upload to each new name add 432 kB of index, past any quota."""
    root = settings.index_dir / COLLECTIONS_DIR
    collections = [c for c in root.iterdir() if (c / UPLOADS_DIR).is_dir()] if root.is_dir() else []
    return sum(p.stat().st_size for c in collections for p in c.rglob("*") if p.is_file() and not p.is_symlink())


@one_at_a_time
def add_files(settings: Settings, name: str, files: list[Upload], progress: Progress | None = None,
              index: bool = True) -> tuple[Added, IndexReport | None]:
    """Save files (a .zip is unpacked) into upload collection `name`, then index it incrementally.

    settings is the index root's. A name that exists is replaced (a re-upload updates the document).
    Returns what was saved and refused, and the indexing report (None when nothing was saved or index
    is False). Files the loader then skips (not UTF-8, empty, broken) are reported and removed again.
    Another `qa index` on the collection: IndexBusyError, at once.
    """
    folder = check_upload_collection(settings, name)
    added, ready, total = Added(), [], 0
    for given, content in files:
        shown = _shown(str(given))
        is_zip = isinstance(given, str) and Path(given.replace("\\", "/")).suffix.lower() == ZIP_SUFFIX
        try:
            source = None if is_zip else clean_name(given)
        except UsageError as exc:
            added.refused.append(Skipped(shown, str(exc)))
            continue
        limit = MAX_UPLOAD_BYTES if is_zip else min(MAX_UPLOAD_BYTES, MAX_FILE_BYTES)
        try:
            data = _read_capped(content, limit)
        except OSError as exc:
            added.refused.append(Skipped(shown, f"unreadable ({exc.strerror})"))
            continue
        if data is None:
            added.refused.append(Skipped(shown, f"larger than {limit // 1_000_000} MB"))
            continue
        if total + len(data) > MAX_REQUEST_BYTES:
            added.refused.append(Skipped(shown, f"the upload is over {MAX_REQUEST_BYTES // 1_000_000} MB in all"))
            continue
        total += len(data)
        if is_zip:
            found, refused = unpack_zip(data, shown)
            ready += found
            added.refused += refused
        else:
            ready.append((source, data))
    if not ready:
        return added, None
    used = uploads_in_use(settings)
    if used + sum(len(data) for _, data in ready) > MAX_UPLOADS_TOTAL_BYTES:
        added.refused += [Skipped(source, f"upload collections (documents and indexes) would pass "
                                          f"{MAX_UPLOADS_TOTAL_BYTES // 1_000_000} MB in all (QA_MAX_UPLOADS_TOTAL_MB): "
                                          "delete a collection first")
                          for source, _ in ready]
        return added, None
    is_cancelled = cancelled.get()
    if is_cancelled is not None and is_cancelled():  # it waited for another upload, and its page was closed
        raise Cancelled()
    index_dir = collection_dir(settings.index_dir, name)
    with index_lock(index_dir):  # busy at once, and no `qa index` reads a half-written folder
        folder.mkdir(parents=True, exist_ok=True)
        for source, data in ready:
            try:
                _write(folder, source, data)
            except UsageError as exc:
                added.refused.append(Skipped(source, str(exc)))
                continue
            except OSError as exc:
                added.refused.append(Skipped(source, f"could not be saved ({exc.strerror})"))
                continue
            if source not in added.saved:
                added.saved.append(source)
    if not added.saved or not index:
        return added, None
    # One time budget for reading every PDF and .docx of the upload (the ones already read are cached):
    # the per-file limit alone let a zip of many small slow files hold the upload lock for hours.
    budget = seconds_for(sum(p.stat().st_size for p in folder.rglob("*")
                             if p.suffix.lower() in ISOLATED_SUFFIXES and p.is_file() and not p.is_symlink()))
    token = parse_budget.set((time.monotonic() + budget, budget))
    try:
        report = index_uploads(settings, name, progress, added.saved)
    finally:
        parse_budget.reset(token)
    return added, report


def index_uploads(settings: Settings, name: str, progress: Progress | None = None,
                  new: list[str] = ()) -> IndexReport:
    """Index an upload collection's folder (incremental); files of this upload (`new`) that the loader skipped
    are removed from it.

    Only those not in the index: the loader also reports notes on documents it did index (a PDF page
    without a text layer), and removing those deleted the document (the next upload dropped it). Never
    a document saved before: one skipped this time (out of reading time) is still the user's."""
    folder = check_upload_collection(settings, name)
    report = build_index(settings.with_(index_dir=collection_dir(settings.index_dir, name), corpus=folder),
                         corpus=folder, progress=progress, allow_empty=True)
    indexed = indexed_sources(settings, name)
    for skipped in report.skipped:
        path = folder / skipped.path
        if (skipped.path in new and skipped.path not in indexed and _inside(path, folder) and path.is_file()
                and not path.is_symlink()):
            path.unlink()
    return report


def indexed_sources(settings: Settings, name: str) -> set[str]:
    return {source for source, _ in list_documents(settings, name)}


@one_at_a_time
def remove_document(settings: Settings, name: str, source: str, progress: Progress | None = None) -> IndexReport:
    """Delete one document of an upload collection and re-index it (the last one leaves it empty)."""
    folder = check_upload_collection(settings, name)
    # Only a source exactly as listed: pathlib would read "a.txt/" or "./a.txt" as "a.txt"
    if not isinstance(source, str) or not source or {"", ".", ".."} & set(source.split("/")) \
            or _has_control_chars(source):
        raise NotFoundError(f"No document {_shown(str(source))!r} in collection {name!r}")
    path = folder.joinpath(*source.split("/"))
    if not _inside(path, folder) or not path.is_file() or path.is_symlink():
        raise NotFoundError(f"No document {_shown(source)!r} in collection {name!r}")
    with index_lock(collection_dir(settings.index_dir, name)):
        path.unlink()
        parent = path.parent
        while parent != folder and _inside(parent, folder) and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return index_uploads(settings, name, progress)


def list_documents(settings: Settings, name: str) -> list[tuple[str, int]]:
    """(source, chunks) of each indexed document of a collection, by source (chunk texts shared with an
    earlier document count there)."""
    path = collection_dir(settings.index_dir, check_name(name)) / "index.sqlite"
    if not path.is_file():
        if name == DEFAULT_COLLECTION or uploads_dir(settings.index_dir, name).is_dir():
            return []
        raise NotFoundError(f"No collection named {name!r}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT d.source, COUNT(c.chunk_id) FROM documents d LEFT JOIN chunks c "
                                "ON c.source = d.source GROUP BY d.source ORDER BY d.source").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [(source, int(n)) for source, n in rows]
