"""Parse PDF and .docx files in a child process with a time and memory limit.

Their parser libraries can spend minutes and gigabytes on a few hostile kilobytes (a 4 KB PDF whose one
content stream of 1.9M operators is shared by every page took 112 s and 790 MB), and a thread cannot be
stopped. The child is started on the first such file and reused; past its limit, or when the caller cancels,
it is killed (the next file starts a new one) and the file is skipped with a reason.

The child speaks pickled (suffix, bytes) in and ("ok", Parsed) | ("unreadable", reason) |
("utf8", byte offset) | ("failed", exception type) out, each message prefixed by its length.
"""

from __future__ import annotations

import contextvars
import json
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

ISOLATED_SUFFIXES = frozenset({".pdf", ".docx"})


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 and value != float("inf") else default


# Time scales with the file: a real 300-page manual gets minutes, a 4 KB file about ten seconds.
BASE_SECONDS, SECONDS_PER_MB = 10.0, 200.0
MAX_PARSE_SECONDS = _env_number("QA_MAX_PARSE_SECONDS", 600)
MAX_PARSE_MB = _env_number("QA_MAX_PARSE_MB", 2048)  # the child's address space

# Set by whoever can tell that nobody waits for the result any more (the chat's upload, on disconnect).
cancelled: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar("cancelled", default=None)
# (deadline on time.monotonic(), seconds in all) for every parse of one upload: a zip of 1,000 slow 5 KB PDFs
# got ten seconds each, and held the upload lock for hours.
parse_budget: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("parse_budget", default=None)


class ParseLimit(Exception):
    """The parse went past its time or memory limit, or was cancelled: the file is skipped with this reason."""


class Cancelled(BaseException):
    """Nobody waits for this indexing any more. A BaseException, as asyncio's CancelledError is: the loader's
    catch-all for a parser's failures on one file must not turn it into a skipped file."""


def seconds_for(size: int) -> float:
    return min(MAX_PARSE_SECONDS, BASE_SECONDS + SECONDS_PER_MB * size / 1_000_000)


def _seconds_allowed(size: int) -> tuple[float, str]:
    """This file's time limit, and what to say when it is passed: its own, or what is left of the upload's."""
    seconds, why = seconds_for(size), "reading it took over {:.0f} s (QA_MAX_PARSE_SECONDS)"
    budget = parse_budget.get()
    if budget is not None:
        left = budget[0] - time.monotonic()
        if left < seconds:
            seconds, why = left, f"reading this upload's files took over {budget[1]:.0f} s in all"
    return seconds, why


class _Child:
    """One parser process; `parse` sends it a file and waits, polling for cancellation."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "index.isolate", str(int(MAX_PARSE_MB))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True)  # a Ctrl-C meant for qa index is handled there

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()

    def _read(self, n: int, deadline: float, is_cancelled: Callable[[], bool] | None) -> bytes:
        fd, data = self.proc.stdout.fileno(), b""
        while len(data) < n:
            now = time.monotonic()
            if now >= deadline:
                raise ParseLimit("time")
            if is_cancelled is not None and is_cancelled():
                raise Cancelled()
            ready, _, _ = select.select([fd], [], [], min(0.2, deadline - now))
            if ready:
                chunk = os.read(fd, n - len(data))
                if not chunk:
                    raise ParseLimit("memory")  # the child died: out of its address space, or killed
                data += chunk
        return data

    def parse(self, suffix: str, data: bytes, seconds: float):
        message = pickle.dumps((suffix, data))
        self.proc.stdin.write(struct.pack(">Q", len(message)) + message)
        self.proc.stdin.flush()
        deadline, is_cancelled = time.monotonic() + seconds, cancelled.get()
        (size,) = struct.unpack(">Q", self._read(8, deadline, is_cancelled))
        return pickle.loads(self._read(size, deadline, is_cancelled))


_lock = threading.Lock()  # one file at a time through the one child
_child: _Child | None = None


def parse_isolated(suffix: str, data: bytes):
    """index.load.parse(suffix, data), run in the child: its Parsed, or the same exceptions parse raises
    (Unreadable, UnicodeDecodeError), ParseLimit past the limits, Cancelled when the caller gave up."""
    from .formats import Unreadable

    global _child
    seconds, why = _seconds_allowed(len(data))
    if seconds <= 0:
        raise ParseLimit(why)
    with _lock:
        if _child is None or not _child.alive():
            _child = _Child()
        try:
            kind, value = _child.parse(suffix, data, seconds)
        except (ParseLimit, Cancelled, OSError) as exc:
            _child.kill()
            _child = None
            if isinstance(exc, Cancelled):
                raise
            if isinstance(exc, ParseLimit) and str(exc) == "time":
                raise ParseLimit(why.format(seconds)) from None
            raise ParseLimit(f"reading it needed over {MAX_PARSE_MB:.0f} MB of memory (QA_MAX_PARSE_MB)") from None
    if kind == "ok":
        return value
    if kind == "utf8":
        raise UnicodeDecodeError("utf-8", b"", value, value + 1, "invalid")
    if kind == "unreadable":
        raise Unreadable(value)
    raise Unreadable(f"could not be read ({value})")


class ParseCache:
    """What PDF and .docx files parsed to, by the sha256 of their bytes, kept in the index folder: adding one
    file to a collection read every PDF in it again (a 50-byte upload waited 57 s behind a slow one).
    An entry names the indexer's code too, so a new parser reads every file again."""

    def __init__(self, folder: Path, code: str):
        self.folder, self.code = folder, code[:16]

    def _path(self, digest: str) -> Path:
        return self.folder / f"{self.code}-{digest}.json"

    def get(self, digest: str):
        from .formats import Block, Parsed

        try:
            saved = json.loads(self._path(digest).read_text(encoding="utf-8"))
            return Parsed(saved["text"], [Block(**b) for b in saved["blocks"]], saved["notes"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or damaged: parse again

    def put(self, digest: str, parsed) -> None:
        try:
            self.folder.mkdir(exist_ok=True)
            temp = self._path(digest).with_suffix(".tmp")
            temp.write_text(json.dumps({"text": parsed.text, "blocks": [asdict(b) for b in parsed.blocks],
                                        "notes": parsed.notes}), encoding="utf-8")
            os.replace(temp, self._path(digest))
        except OSError:
            pass  # a cache: the next run parses again

    def keep_only(self, digests: set[str]) -> None:
        """Drop the entries of files no longer in the corpus, or of another indexer version."""
        if self.folder.is_dir():
            keep = {self._path(d).name for d in digests}
            for path in self.folder.iterdir():
                if path.name not in keep:
                    path.unlink(missing_ok=True)


def _serve(limit_mb: int) -> None:
    """The child's loop: parse what arrives on stdin until it closes."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 1_000_000, limit_mb * 1_000_000))
    from .formats import Unreadable
    from .load import parse

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while header := stdin.read(8):
        (size,) = struct.unpack(">Q", header)
        suffix, data = pickle.loads(stdin.read(size))
        try:
            reply = ("ok", parse(suffix, data))
        except UnicodeDecodeError as exc:
            reply = ("utf8", exc.start)
        except Unreadable as exc:
            reply = ("unreadable", str(exc))
        except MemoryError:
            return  # the parent reads the closed pipe as over the memory limit
        except Exception as exc:  # noqa: BLE001 -- a parser library failing on one file: said, not fatal
            reply = ("failed", type(exc).__name__)
        message = pickle.dumps(reply)
        stdout.write(struct.pack(">Q", len(message)) + message)
        stdout.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
