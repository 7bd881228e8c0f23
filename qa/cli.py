"""The `qa` command line: parses arguments, calls the library, prints. Exit codes: 0 ok, 1 failure, 2 usage."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import textwrap
import time
from pathlib import Path

from index.config import load_settings
from index.errors import NotFoundError, QAError, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"qa: error: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="qa", description="Grounded question answering over a folder of documents.")
    p.add_argument("--index-dir", help="index folder (env QA_INDEX_DIR, default .qa-index)")
    p.add_argument("--corpus", help="document folder (env QA_CORPUS, default seeds/)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    # Every command that reads or writes an index takes the collection it works on.
    coll = _Parser(add_help=False)
    coll.add_argument("--collection", metavar="NAME",
                      help="named index (env QA_COLLECTION; default: the default collection, made from --corpus)")

    s = sub.add_parser("index", help="index documents (incremental)", parents=[coll])
    s.add_argument("paths", nargs="*", help="corpus folder (default: QA_CORPUS)")
    s.add_argument("--rebuild", action="store_true", help="start from an empty index")
    s.add_argument("--allow-empty", action="store_true", help="let a folder with no readable documents empty the index")

    s = sub.add_parser("ask", help="answer one question with citations", parents=[coll])
    s.add_argument("question")
    s.add_argument("--json", action="store_true", help="print the Answer JSON")
    s.add_argument("-k", type=int, default=5, help="passages to retrieve (default 5)")
    s.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "lexical"])

    s = sub.add_parser("chat", help="multi-turn questions in the terminal", parents=[coll])
    s.add_argument("-k", type=int, default=5)

    s = sub.add_parser("source", help="print an indexed source, or a span of it with context", parents=[coll])
    s.add_argument("source", nargs="?")
    s.add_argument("--start", type=int)
    s.add_argument("--end", type=int)
    s.add_argument("--list", action="store_true", help="list indexed sources")

    s = sub.add_parser("serve", help="browser chat and REST API", parents=[coll])
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7860)
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this Host name (repeatable; '*' for any)")

    s = sub.add_parser("collections", help="list collections (documents, chunks, size, last indexed), or delete one")
    s.add_argument("action", nargs="?", default="list", choices=["list", "delete"])
    s.add_argument("name", nargs="?", help="the collection to delete")
    s.add_argument("--json", action="store_true", help="print the list as JSON")

    s = sub.add_parser("eval", help="run the grounding eval")
    s.add_argument("--set", dest="eval_set", help="eval set JSONL (default eval/data/reference.jsonl)")
    s.add_argument("--baselines", action="store_true", help="also run BM25-only, dense-only, plain LangChain")
    s.add_argument("--out", help="report folder (default eval/reports)")
    s.add_argument("--split", default="test", choices=["train", "dev", "test", "all"],
                   help="which blind splits to run besides the sets without one (default: the frozen test split)")
    return p


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _IndexProgress:
    """Draws `qa index` events on stderr: a bar when it is a terminal; skipped files always, each once."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.line = ""  # the bar now on screen, unfinished
        self.embed_start: float | None = None
        self.first_batch: tuple[float, int] | None = None  # the rate leaves out the model's loading time
        self.drawn_at = 0.0
        self._draw("reading files...", final=False)

    def __call__(self, event) -> None:
        if event.stage == "skipped":
            self._clear()
            print(f"warning: skipped {event.skipped.path}: {event.skipped.reason}", file=self.stream)
            self._draw(self.line, final=False)
        elif event.stage == "reading":
            if 0 < event.done < event.total and time.monotonic() - self.drawn_at < 0.1:
                return  # thousands of small files: redraw ten times a second, not per file
            self.drawn_at = time.monotonic()
            self._draw(f"reading {self._bar(event.done, event.total)} files", final=event.done >= event.total)
        elif event.stage == "embedding":
            self._draw(f"embedding {self._bar(event.done, event.total)} chunks{self._eta(event.done, event.total)}",
                       final=event.done >= event.total)

    def _bar(self, done: int, total: int, width: int = 30) -> str:
        filled = width * done // max(total, 1) if total else width
        return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"

    def _eta(self, done: int, total: int) -> str:
        now = time.monotonic()
        if self.embed_start is None or done == 0:
            self.embed_start = now
            return ", loading the model" if total else ""
        if done >= total:
            return f", done in {_duration(now - self.embed_start)}"
        if self.first_batch is None:
            self.first_batch = (now, done)
        since, base = self.first_batch if done > self.first_batch[1] else (self.embed_start, 0)
        rate = (done - base) / max(now - since, 1e-6)
        return f", ETA {_duration((total - done) / rate)}"

    def finish(self) -> None:
        """End an unfinished bar's line, so what follows (an error) starts on its own."""
        if self.tty and self.line:
            print(file=self.stream)
            self.line = ""

    def _clear(self) -> None:
        if self.tty and self.line:
            print("\r\033[K", end="", file=self.stream)

    def _draw(self, line: str, final: bool) -> None:
        if not self.tty or not line:
            return
        self._clear()
        print(line, end="\n" if final else "", file=self.stream, flush=True)
        self.line = "" if final else line


def _warn_skipped(report) -> None:
    for skip in report.skipped:
        print(f"warning: skipped {skip.path}: {skip.reason}", file=sys.stderr)


def _open_qa(settings, fast_start: bool = False):
    """The engine, building the index first (and saying so) when there is none."""
    from .engine import QA

    def announce(report) -> None:
        print(f"No index yet: built one from {settings.corpus}. {report.summary()}", file=sys.stderr)
        _warn_skipped(report)

    return QA(settings, on_build=announce, fast_start=fast_start)


def cmd_index(args, settings) -> int:
    from index.collections import DEFAULT_COLLECTION, collection_info, collection_settings

    if len(args.paths) > 1:
        raise UsageError("qa index takes one corpus folder")
    name = args.collection
    corpus = Path(args.paths[0]) if args.paths else None
    if corpus is not None and not corpus.exists():
        raise NotFoundError(f"No such file or folder: {corpus}")
    before = collection_info(settings, name).corpus
    settings = collection_settings(settings, name, corpus)  # a named one without a folder: the folder it indexes
    corpus = settings.corpus
    progress = _IndexProgress()  # on screen before the slow imports
    from index.build import build_index

    try:
        report = build_index(settings, corpus, rebuild=args.rebuild, progress=progress,
                             allow_empty=args.allow_empty)  # skipped files are reported as found
    finally:
        progress.finish()
    if before and Path(before) != corpus.resolve():  # said after the run: a failed one changed nothing
        print(f"note: collection {name!r} indexed {before}; it now indexes {corpus.resolve()}", file=sys.stderr)
    if report.documents == 0:
        print(f"warning: no readable documents in {corpus}: the index is now empty", file=sys.stderr)
    print(report.summary() + ("" if name == DEFAULT_COLLECTION else f" into collection {name!r}"))
    return 0


def cmd_ask(args, settings) -> int:
    from .engine import check_question
    from .format import format_answer

    check_question(args.question, args.k, args.mode)  # fail fast, before loading anything
    qa = _open_qa(_collection(args, settings), fast_start=True)
    answer = qa.ask(args.question, k=args.k, mode=args.mode)
    for note in qa.index.notes:
        print(f"warning: {note}", file=sys.stderr)
    print(json.dumps(answer.to_json(), ensure_ascii=False, indent=2) if args.json else format_answer(answer))
    return 0


def _wrap_for_terminal(text: str) -> str:
    """Answer prose wrapped to the terminal's width; citation lines ("[n] ...", indented passages) kept whole,
    so each stays one line to copy or grep."""
    width = shutil.get_terminal_size().columns
    return "\n".join(line if re.match(r"\[\d+\] |\s", line) or len(line) <= width
                     else textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
                     for line in text.split("\n"))


def cmd_chat(args, settings) -> int:
    from .format import format_answer

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive:
        import readline  # noqa: F401  (gives input() line editing and an in-session history: arrow keys)
    qa = _open_qa(_collection(args, settings))
    history: list[tuple[str, str]] = []
    print("Ask a question (empty line or Ctrl-D to quit).")
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            break
        if not question:
            break
        try:
            answer = qa.ask(question, history=history, k=args.k)
        except UsageError as exc:
            print(f"qa: {exc}")
            continue
        shown = format_answer(answer, show_query=True)
        print(_wrap_for_terminal(shown) if interactive else shown)
        print()
        history.append((question, answer.answer))
    return 0


def cmd_source(args, settings) -> int:
    from .engine import QA

    from .format import terminal_safe

    qa = QA(_collection(args, settings), build_if_missing=False)
    if args.list or not args.source:
        print("\n".join(qa.index.sources()))
        return 0
    text = qa.source_text(args.source)
    if args.start is None and args.end is None:
        sys.stdout.write(terminal_safe(text) if sys.stdout.isatty() else text)  # piped: the exact text
        return 0
    start, end = args.start or 0, len(text) if args.end is None else args.end
    if not 0 <= start <= end <= len(text):
        raise UsageError(f"--start/--end must satisfy 0 <= start <= end <= {len(text)}")
    before = text.rfind("\n", 0, max(start - 200, 0)) + 1 if start > 200 else 0
    after = text.find("\n", min(end + 200, len(text)))
    after = len(text) if after == -1 else after
    print(terminal_safe(f"{text[before:start]}>>>{text[start:end]}<<<{text[end:after]}"))
    return 0


def cmd_serve(args, settings) -> int:
    from ui.server import check_port, serve

    from .library import Library

    check_port(args.host, args.port)  # before building an index we could not serve
    library = Library(settings, _open_qa(settings))
    library.get(args.collection)  # an unknown --collection fails here, in one line, not in the browser
    serve(library, host=args.host, port=args.port, allow_hosts=args.allow_host, collection=args.collection)
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def cmd_collections(args, settings) -> int:
    from index.collections import delete_collection, list_collections

    from .format import terminal_safe

    if args.action == "delete":
        if not args.name:
            raise UsageError("say which collection: qa collections delete NAME")
        delete_collection(settings, args.name)
        print(f"Deleted collection {args.name!r}")
        return 0
    if args.name:
        raise UsageError("qa collections lists them all; to delete one: qa collections delete NAME")
    found = list_collections(settings)
    if args.json:
        print(json.dumps([c.to_json() for c in found], ensure_ascii=False, indent=2))
        return 0
    rows = [("NAME", "DOCS", "CHUNKS", "SIZE", "LAST INDEXED", "FOLDER")]
    for c in found:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.indexed_at)) if c.indexed_at else "never"
        rows.append((c.name, str(c.documents), str(c.chunks), _size(c.bytes), when,
                     "(uploads)" if c.uploads else c.corpus or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) if i in (0, 4) else cell.rjust(w) for i, (cell, w) in
                        enumerate(zip(row[:5], widths))) + "  " + terminal_safe(row[5]))
    return 0


def cmd_eval(args, settings) -> int:
    from eval.run import main as eval_main

    splits = ("train", "dev", "test") if args.split == "all" else (args.split,)
    return eval_main(settings, eval_set=args.eval_set, baselines=args.baselines, out=args.out, splits=splits)


def _collection(args, settings):
    """Settings of the collection a command works on (an unknown named one: NotFoundError)."""
    from index.collections import collection_settings

    return collection_settings(settings, args.collection)


COMMANDS = {"index": cmd_index, "ask": cmd_ask, "chat": cmd_chat, "source": cmd_source,
            "serve": cmd_serve, "collections": cmd_collections, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # bytes the terminal passed through that are not UTF-8
            print(f"qa: error: argument {ascii(arg)} is not valid UTF-8", file=sys.stderr)
            return 2
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(corpus=args.corpus, index_dir=args.index_dir)
        if "collection" in args:
            from index.collections import DEFAULT_COLLECTION, check_name

            args.collection = check_name(args.collection or os.environ.get("QA_COLLECTION") or DEFAULT_COLLECTION)
        return COMMANDS[args.command](args, settings)
    except (UsageError, NotFoundError) as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 2
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`qa ask ... | head -1`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
