"""The chat's Documents panel: upload files (or a .zip) into an upload collection, watch it being indexed,
list its documents with their chunk counts, remove one. The work is index.uploads'; this is display only.

Files arrive through Gradio's own upload route into its upload folder; the one event that takes them
(api_name UPLOAD_API) accepts only paths inside that folder (checked here and, before Gradio sees the
request, in ui/security.py's RequestGuard).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from html import escape
from pathlib import Path
from urllib.parse import quote

import gradio as gr

from index.collections import check_name, collection_info
from index.errors import QAError, said
from index.formats import SUFFIXES
from index.isolate import Cancelled, cancelled
from index.load import MAX_FILE_BYTES
from index.progress import IndexEvent
from index.uploads import (
    MAX_REQUEST_BYTES,
    MAX_UPLOAD_BYTES,
    ZIP_SUFFIX,
    add_files,
    check_upload_collection,
    indexed_sources,
    list_documents,
    remove_document,
)
from qa.library import Library

UPLOAD_API = "upload_documents"
DOCUMENTS_CSS = """
.qa-docs {width:100%; font-size:.88rem; border-collapse:collapse;} .qa-docs td, .qa-docs th {padding:.2rem .4rem;
          border-bottom:1px solid #d9e2ec; text-align:left;} .qa-docs .qa-num {text-align:right;}
.qa-docs a {color:#3e7bfa; overflow-wrap:anywhere;} .qa-progress {font-size:.9rem; line-height:1.5;}
.qa-skip {color:#b44d12;} .qa-error {color:#b42318;} .qa-note {color:#52606d; font-size:.85rem;}
.dark .qa-docs a {color:#7ea8ff;} .dark .qa-skip {color:#f7b27a;} .dark .qa-error {color:#fda29b;}
.dark .qa-note {color:#9aa5b1;} .dark .qa-docs td, .dark .qa-docs th {border-color:#3e4c59;}
"""
ACCEPTED = sorted(s for s in SUFFIXES if s) + [ZIP_SUFFIX]


def upload_folder() -> str:
    """Gradio's upload folder, resolved: the only place an uploaded file may be read from."""
    from gradio.utils import get_upload_folder

    return os.path.realpath(get_upload_folder())


def in_upload_folder(path: object) -> bool:
    """True for a path string that resolves (links followed) to a file inside Gradio's upload folder."""
    if not isinstance(path, str) or not path or "\x00" in path or "://" in path:
        return False
    real = os.path.realpath(path)
    return real.startswith(upload_folder() + os.sep) and os.path.isfile(real)


UNCLAIMED_UPLOAD_S = 600  # the upload event follows its upload at once: one not indexed within 10 min never will be
MAX_WAITING_UPLOADS_BYTES = 4 * MAX_REQUEST_BYTES
MAX_WAITING_UPLOADS_FILES = 2000  # 80 requests of 1,000 tiny files made every later upload walk 80,000 of them


def sweep_upload_folder() -> tuple[int, int]:
    """Delete files in Gradio's upload folder older than UNCLAIMED_UPLOAD_S (and emptied folders); return the
    bytes and the number of files still waiting there. Indexed uploads are deleted at once
    (discard_upload_copies); this catches the rest, so posting files without indexing them cannot fill the disk.
    Blocking file work: the server runs it off its event loop."""
    top, now = Path(upload_folder()), time.time()
    waiting = files = 0
    for folder, _, names in os.walk(top, topdown=False):
        for name in names:
            path = Path(folder) / name
            with contextlib.suppress(OSError):  # gone meanwhile: another request swept it
                stat = path.lstat()
                if now - stat.st_mtime > UNCLAIMED_UPLOAD_S:
                    path.unlink()
                else:
                    waiting += stat.st_size
                    files += 1
        if Path(folder) != top:
            with contextlib.suppress(OSError):
                Path(folder).rmdir()
    return waiting, files


def upload_collections(library: Library) -> list[str]:
    return [c.name for c in library.collections() if c.uploads]


def _mb(n: int) -> str:
    return f"{n // 1_000_000} MB"


def render_documents(library: Library, name: str) -> str:
    """The collection's documents with their chunk counts, each linking to its indexed text."""
    try:
        docs = list_documents(library.settings, check_name(name))
    except QAError as exc:
        return f'<p class="qa-empty">{escape(str(exc))}</p>'
    if not docs:
        return f'<p class="qa-empty">No documents in <b>{escape(name)}</b> yet.</p>'
    rows = "".join(f'<tr><td><a href="/view/{quote(source)}?collection={quote(name)}" target="_blank" '
                   f'rel="noopener">{escape(source)}</a></td><td class="qa-num">{n}</td></tr>' for source, n in docs)
    return (f'<table class="qa-docs"><thead><tr><th>{len(docs)} document{"s" if len(docs) != 1 else ""} in '
            f'{escape(name)}</th><th>chunks</th></tr></thead><tbody>{rows}</tbody></table>')


def _where(library: Library, name: str) -> str:
    """What the panel says about the collection uploads would go into."""
    try:
        check_upload_collection(library.settings, check_name(name))
    except QAError as exc:
        return f'<p class="qa-note">{escape(str(exc))}</p>'
    exists = collection_info(library.settings, name).corpus
    return (f'<p class="qa-note">{"Uploads go into" if exists else "The first upload makes"} the collection '
            f'<b>{escape(name)}</b>. Up to {_mb(min(MAX_UPLOAD_BYTES, MAX_FILE_BYTES))} a document, '
            f'{_mb(MAX_UPLOAD_BYTES)} a .zip, {_mb(MAX_REQUEST_BYTES)} an upload; {", ".join(ACCEPTED)}.</p>')


class _Run:
    """What an upload's indexing has reported so far, drawn as HTML."""

    def __init__(self, name: str, files: int):
        self.name, self.files = name, files
        self.read = (0, 0)
        self.embedded = (0, 0)
        self.skipped: list[tuple[str, str]] = []
        self.done = ""

    def event(self, event: IndexEvent) -> None:
        if event.stage == "reading":
            self.read = (event.done, event.total)
        elif event.stage == "embedding":
            self.embedded = (event.done, event.total)
        elif event.stage == "skipped" and event.skipped:
            self.skipped.append((event.skipped.path, event.skipped.reason))

    def html(self) -> str:
        lines = [f"<b>{escape(self.done)}</b>" if self.done else
                 f"Indexing {self.files} file{'s' if self.files != 1 else ''} into <b>{escape(self.name)}</b>\u2026"]
        if self.read[1]:
            lines.append(f"files read: {self.read[0]} / {self.read[1]}")
        if self.embedded[1] or self.done:
            lines.append(f"chunks embedded: {self.embedded[0]} / {self.embedded[1]}")
        lines += [f'<span class="qa-skip">skipped {escape(path)}: {escape(reason)}</span>'
                  for path, reason in self.skipped]
        return '<div class="qa-progress" role="status">' + "<br>".join(lines) + "</div>"


def discard_upload_copies(paths: list[Path]) -> None:
    """Delete Gradio's temporary copies of uploaded files (and their emptied folders) once the collection holds
    its own: otherwise every upload would be kept twice, the second copy forever."""
    top = upload_folder()
    for path in paths:
        if not in_upload_folder(str(path)):
            continue
        real = Path(os.path.realpath(path))
        real.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: another upload still uses the folder
            if str(real.parent) != top:
                real.parent.rmdir()


def upload_documents(library: Library, files, name):
    """Save and index uploaded files, yielding (progress HTML, document list HTML) as indexing goes."""
    name = (name or "").strip() if isinstance(name, str) else ""
    try:
        check_upload_collection(library.settings, check_name(name))
    except QAError as exc:
        yield f'<p class="qa-error">\u26a0 {escape(str(exc))}</p>', gr.update()
        return
    paths = [f for f in (files if isinstance(files, list) else [files]) if f]
    given = [(Path(p).name, Path(p)) for p in paths if in_upload_folder(p)]
    if len(given) != len(paths) or not given:
        yield '<p class="qa-error">\u26a0 no uploaded files (only files sent with the upload button are read)</p>', \
            gr.update()
        return
    run, events = _Run(name, len(given)), queue.Queue()
    outcome: dict = {}
    gone = threading.Event()  # set when nobody reads this generator any more: the page was closed

    def progress(event: IndexEvent) -> None:
        if gone.is_set():
            raise Cancelled()
        events.put(event)

    def work():
        cancelled.set(gone.is_set)  # a parse under way in the parser process is stopped too
        try:
            outcome["result"] = add_files(library.settings, name, given, progress=progress)
        except Cancelled:
            outcome["error"] = "cancelled: the page that started the upload was closed"
        except QAError as exc:
            outcome["error"] = said(exc)
        except Exception as exc:  # said in the panel, the traceback in the server log; never a bare KeyError
            logging.getLogger(__name__).exception("upload to %s failed", name)
            outcome["error"] = f"indexing failed ({type(exc).__name__}); the server log has the details"
        finally:
            discard_upload_copies([path for _, path in given])
            events.put(None)

    threading.Thread(target=work, name="qa-upload", daemon=True).start()
    try:
        while True:  # draw what the indexer says, at most a few times a second
            item = events.get()
            pending = [item]
            while item is not None and not events.empty():
                item = events.get()
                pending.append(item)
            for event in pending:
                if event is not None:
                    run.event(event)
            if item is None:
                break
            yield run.html(), gr.update()
    finally:  # Gradio closes the generator when the client goes away: the work stops at its next step
        gone.set()
    if "error" in outcome:
        yield run.html() + f'<p class="qa-error">\u26a0 {escape(outcome["error"])}</p>', gr.update()
        return
    added, report = outcome["result"]
    indexed = indexed_sources(library.settings, name) if report else set()
    kept = [s for s in added.saved if s in indexed]  # a note on an indexed document (a blank page) keeps it
    run.skipped = [(r.path, r.reason) for r in added.refused] + run.skipped
    more = ", \u2026" if len(kept) > 5 else ""
    run.done = (f"Done: {len(kept)} document{'s' if len(kept) != 1 else ''} added to {name}"
                + (f" ({', '.join(kept[:5])}{more})" if kept else "")
                + (f"; {report.documents} in all, {report.chunks} chunks. Pick {name} under Collection to ask "
                   "about them." if report else "; nothing was indexed."))
    yield run.html(), render_documents(library, name)


def remove(library: Library, name, source):
    """Remove one document and re-index; returns (status HTML, document list HTML)."""
    if not name or not source:  # nothing chosen: say what to choose, not what a collection name may be
        said = "Choose an upload collection first" if not name else "Choose the document to remove first"
        return f'<p class="qa-error">\u26a0 {said}.</p>', gr.update()
    try:
        report = remove_document(library.settings, check_name(name or ""), source or "")
    except QAError as exc:
        return f'<p class="qa-error">\u26a0 {escape(said(exc))}</p>', gr.update()
    done = (f'<p class="qa-progress">Removed {escape(source)}: {report.documents} documents, {report.chunks} chunks '
            f'left in {escape(name)}.</p>')
    return done, render_documents(library, name)


CONFIRM_REMOVE_JS = """(collection, source, confirmed) => [collection, source,
  source ? window.confirm(`Remove ${source} from ${collection}? Its file is deleted too.`) : true]"""
CONFIRM_DELETE_COLLECTION_JS = """(collection, confirmed, shown) => [collection,
  collection ? window.confirm(`Delete the collection ${collection}, its index and its uploaded documents? `
                              + "This cannot be undone.") : true, shown]"""


def delete_upload_collection(library: Library, name) -> str:
    """Delete an upload collection (its index and uploaded files); status HTML. A collection made from a folder
    of the user's is deleted from the command line (`qa collections delete NAME`), never from the browser."""
    from index.collections import delete_collection

    if not name:
        return '<p class="qa-error">\u26a0 Choose an upload collection first.</p>'
    try:
        if name not in upload_collections(library):
            return (f'<p class="qa-error">\u26a0 {escape(name)} is not an upload collection: delete it with '
                    f'<code>qa collections delete {escape(name)}</code>.</p>')
        delete_collection(library.settings, check_name(name))
    except QAError as exc:
        return f'<p class="qa-error">\u26a0 {escape(str(exc))}</p>'
    library.forget(name)
    return f'<p class="qa-progress">Deleted the collection {escape(name)} and its documents.</p>'


def build_documents(library: Library, picker: gr.Dropdown, collection: str) -> None:
    """The Documents accordion, inside build_chat's Blocks; picker is the chat's collection picker."""
    uploads = upload_collections(library)
    start = collection if collection in uploads else (uploads[0] if uploads else "")
    with gr.Accordion("Documents", open=False, elem_id="qa-documents"):
        target = gr.Dropdown(uploads, value=start or None, allow_custom_value=True, interactive=True,
                             label="Upload into collection", elem_id="qa-upload-target",
                             info="an upload collection, or type a new name (lower-case letters, digits, - or _)")
        where = gr.HTML(_where(library, start) if start else "", elem_id="qa-upload-where")
        button = gr.UploadButton("Upload files or a .zip", file_count="multiple", type="filepath",
                                 file_types=ACCEPTED, elem_id="qa-upload", size="md")
        status = gr.HTML("", elem_id="qa-upload-status")
        listing = gr.HTML(render_documents(library, start) if start else "", elem_id="qa-doc-list")
        with gr.Row():
            chosen = gr.Dropdown([s for s, _ in list_documents(library.settings, start)] if start else [],
                                 label="Document", elem_id="qa-doc-remove", interactive=True, scale=3)
            remove_btn = gr.Button("Remove document", variant="stop", elem_id="qa-doc-remove-btn", scale=1)
            confirmed = gr.Checkbox(value=True, visible=False)  # set by the button's confirm()
        delete_btn = gr.Button("Delete this collection", variant="stop", size="sm", elem_id="qa-collection-delete")

    def show(name):
        name = name if isinstance(name, str) else ""
        try:
            sources = [s for s, _ in list_documents(library.settings, check_name(name))]
        except QAError:
            sources = []
        return (_where(library, name) if name else "", render_documents(library, name) if name else "",
                gr.update(choices=sources, value=None))

    def refresh_choices():
        return gr.update(choices=upload_collections(library)), gr.update(choices=[c.name for c in library.collections()])

    target.change(show, [target], [where, listing, chosen], api_name=False)
    target.focus(lambda: gr.update(choices=upload_collections(library)), None, [target], api_name=False)
    picker.input(lambda name: gr.update(value=name) if name in upload_collections(library) else gr.update(),
                 [picker], [target], api_name=False)
    def upload(files: list[str], collection: str):
        """Upload documents (or a .zip) into an upload collection and index them; yields progress HTML."""
        yield from upload_documents(library, files, collection)

    def remove_one(collection: str, source: str, confirmed: bool = True):
        if source and not confirmed:  # the browser's confirm() said no
            return gr.update(), gr.update()
        return remove(library, collection, source)

    button.upload(upload, [button, target], [status, listing], api_name=UPLOAD_API, concurrency_limit=1) \
        .then(refresh_choices, None, [target, picker], api_name=False) \
        .then(show, [target], [where, listing, chosen], api_name=False)
    def delete_one(collection: str, confirmed: bool = True, shown: str = ""):
        if collection and not confirmed:  # the browser's confirm() said no
            return gr.update(), gr.update(), gr.update(), gr.update()
        said = delete_upload_collection(library, collection)
        names = [c.name for c in library.collections()]
        picked = gr.update(choices=names, value=shown if shown in names else names[0])
        return said, gr.update(choices=upload_collections(library), value=None), picked, ""

    delete_btn.click(delete_one, [target, confirmed, picker], [status, target, picker, listing],
                     js=CONFIRM_DELETE_COLLECTION_JS, api_name=False, concurrency_limit=1)
    remove_btn.click(remove_one, [target, chosen, confirmed], [status, listing], js=CONFIRM_REMOVE_JS,
                     api_name=False, concurrency_limit=1) \
        .then(show, [target], [where, listing, chosen], api_name=False)
