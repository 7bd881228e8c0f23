"""Saved chat conversations in SQLite beside the index, and their Markdown export.

One file, `conversations.sqlite` in the index folder root, so a reload or a server restart keeps them. Each
call opens its own connection (WAL, short transactions, a busy timeout), so the server's threads can share
the file. Sizes are bounded, whatever clients do: at most MAX_CONVERSATIONS conversations (the least
recently updated go first), MAX_TURNS turns each (the oldest go first), and MAX_STORE_BYTES of data.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from index.errors import QAError
from qa.format import snippet, split_at_markers
from qa.types import Answer, Citation, Passage

STORE_FILE = "conversations.sqlite"
DEFAULT_COLLECTION = "default"
MAX_CONVERSATIONS = 200
MAX_TURNS = 100  # the chat shows the last 100 turns (200 messages) too
MAX_STORE_BYTES = 64 * 1024 * 1024  # answers with k=50 are ~15 kB: 200 x 100 of those would be 300 MB
MAX_TITLE_CHARS = 80
MAX_COLLECTION_CHARS = 200
_ID = re.compile(r"[0-9a-f]{32}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, collection TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_update ON conversations (updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE, n INTEGER NOT NULL,
    question TEXT NOT NULL, answer TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (conversation, n));
"""


@dataclass(frozen=True)
class Turn:
    question: str
    answer: Answer
    at: float  # unix seconds

    def to_json(self) -> dict:
        return {"question": self.question, "answer": self.answer.to_json(), "at": iso_time(self.at)}


@dataclass(frozen=True)
class Conversation:
    """A saved conversation; `turns` is empty in listings, where `n_turns` says how many there are."""

    id: str
    title: str
    collection: str
    created: float
    updated: float
    n_turns: int
    turns: tuple[Turn, ...] = ()

    def summary_json(self) -> dict:
        return {"id": self.id, "title": self.title, "collection": self.collection, "created": iso_time(self.created),
                "updated": iso_time(self.updated), "turns": self.n_turns}

    def to_json(self) -> dict:
        return {**self.summary_json(), "turns": [t.to_json() for t in self.turns]}


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def store_path(index_dir: Path) -> Path:
    return Path(index_dir) / STORE_FILE


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """One connection for one short transaction; the schema is made on first use (and again if the
    index folder was deleted and rebuilt under a running server)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=10, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise QAError(f"Cannot open the conversation store {path}: {exc}") from exc
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
        db.execute("BEGIN IMMEDIATE")  # writers queue here instead of failing half-way
        yield db
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise QAError(f"The conversation store {path} cannot be used ({exc}): delete it to start afresh") from exc
    finally:
        db.close()


def title_of(question: str) -> str:
    """The first question on one line, cut to MAX_TITLE_CHARS."""
    line = " ".join(question.split())
    return line if len(line) <= MAX_TITLE_CHARS else line[: MAX_TITLE_CHARS - 1] + "\u2026"


def _known(conversation_id) -> bool:
    return isinstance(conversation_id, str) and bool(_ID.fullmatch(conversation_id))


def append_turn(path: Path, conversation_id: str | None, question: str, answer: Answer,
                collection: str = DEFAULT_COLLECTION) -> str:
    """Save one answered question; returns the conversation's id.

    With no id, or one that is gone (deleted in another tab), a new conversation starts, titled by the question.
    """
    now = time.time()
    with _connect(path) as db:
        if not (_known(conversation_id) and db.execute("SELECT 1 FROM conversations WHERE id = ?",
                                                       (conversation_id,)).fetchone()):
            conversation_id = uuid.uuid4().hex
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                       (conversation_id, title_of(question), str(collection)[:MAX_COLLECTION_CHARS], now, now))
        last = db.execute("SELECT max(n) FROM turns WHERE conversation = ?", (conversation_id,)).fetchone()[0]
        db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?)", (conversation_id, (last or 0) + 1, question,
                                                               json.dumps(answer.to_json()), now))
        db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
        db.execute("DELETE FROM turns WHERE conversation = ? AND n <= (SELECT max(n) FROM turns WHERE "
                   "conversation = ?) - ?", (conversation_id, conversation_id, MAX_TURNS))
        _evict(db, keep=conversation_id)
    return conversation_id


def _evict(db: sqlite3.Connection, keep: str) -> None:
    """Drop the least recently updated conversations beyond MAX_CONVERSATIONS or MAX_STORE_BYTES."""
    db.execute("DELETE FROM conversations WHERE id IN (SELECT id FROM conversations ORDER BY updated DESC, id "
               "LIMIT -1 OFFSET ?)", (MAX_CONVERSATIONS,))
    while True:  # pages in use; freed pages are reused, so the file stays near this size
        used = (db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]) \
            * db.execute("PRAGMA page_size").fetchone()[0]
        if used <= MAX_STORE_BYTES:
            return
        oldest = db.execute("SELECT id FROM conversations WHERE id != ? ORDER BY updated, id LIMIT 1",
                            (keep,)).fetchone()
        if oldest is None:
            return
        db.execute("DELETE FROM conversations WHERE id = ?", oldest)


def list_conversations(path: Path) -> list[Conversation]:
    """All saved conversations, most recently updated first, without their turns."""
    with _connect(path) as db:
        rows = db.execute("SELECT c.id, c.title, c.collection, c.created, c.updated, count(t.n) FROM conversations c "
                          "LEFT JOIN turns t ON t.conversation = c.id GROUP BY c.id "
                          "ORDER BY c.updated DESC, c.id").fetchall()
    return [Conversation(*row) for row in rows]


def load_conversation(path: Path, conversation_id: str) -> Conversation | None:
    """One conversation with its turns, oldest first; None for an unknown id."""
    if not _known(conversation_id):
        return None
    with _connect(path) as db:
        row = db.execute("SELECT id, title, collection, created, updated FROM conversations WHERE id = ?",
                         (conversation_id,)).fetchone()
        if row is None:
            return None
        turns = db.execute("SELECT question, answer, at FROM turns WHERE conversation = ? ORDER BY n",
                           (conversation_id,)).fetchall()
    return Conversation(*row, n_turns=len(turns), turns=tuple(
        Turn(question, Answer.from_json(json.loads(answer)), at) for question, answer, at in turns))


def delete_conversation(path: Path, conversation_id: str) -> bool:
    """Delete one conversation; False when there was none with that id."""
    if not _known(conversation_id):
        return False
    with _connect(path) as db:
        return db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount > 0


def rename_conversation(path: Path, conversation_id: str, title: str) -> bool:
    """Give a conversation a new title (one line, cut to MAX_TITLE_CHARS); False for an unknown id."""
    if not _known(conversation_id) or not title.strip():
        return False
    with _connect(path) as db:
        return db.execute("UPDATE conversations SET title = ? WHERE id = ?",
                          (title_of(title), conversation_id)).rowcount > 0


# -- Markdown ---------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&~|])")
_MD_LINE_START = re.compile(r"^(\d*)([#>+\-=.)])")  # a heading, quote, list item or rule


def _md_inline(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _md_line(markdown: str) -> str:
    return _MD_LINE_START.sub(r"\1\\\2", markdown.strip())


def md_text(text: str) -> str:
    """Document or answer text on one line, escaped so that Markdown renders it as exactly these words."""
    return _md_line(_md_inline(text.strip()))


def _md_source(source: str) -> str:
    return f"`{source}`" if "`" not in source else md_text(source)


def _place(item: Citation | Passage) -> str:
    last = item.line + item.text.count("\n")
    lines = f"line {item.line}" if last == item.line else f"lines {item.line}-{last}"
    return f"{_md_source(item.source)} ({f'page {item.page}, ' if item.page else ''}{lines})"


def answer_markdown(answer: Answer) -> str:
    """The answer as Markdown: each sentence with its [n], then "[n] source (line a): "exact cited text""."""
    prose = _md_line("".join(_md_inline(part) if isinstance(part, str) else f"[{part.n}]"
                             for part in split_at_markers(answer)))
    lines = []
    if answer.conflict:
        lines += ["*Sources differ: each account is shown with its own citation.*", ""]
    lines.append(prose)
    if answer.citations:
        lines += ["", *(f'- [{c.n}] {_place(c)}: "{md_text(c.text)}"' for c in answer.citations)]
    elif answer.abstained and answer.passages:
        lines += ["", "Closest passages:", "",
                  *(f'- {_place(p)}: "{md_text(snippet(p.text))}"' for p in answer.passages[:3])]
    return "\n".join(lines) + "\n"


def conversation_markdown(conversation: Conversation) -> str:
    """The whole conversation: a heading per question, each answer with its citations."""
    dates = f"Started {iso_time(conversation.created)}, last question {iso_time(conversation.updated)}."
    parts = [f"# {md_text(conversation.title)}", "", f"Collection: {md_text(conversation.collection)}. {dates}", ""]
    for turn in conversation.turns:
        parts += [f"## {md_text(turn.question)}", ""]
        if turn.answer.search_query != turn.answer.question:
            parts += [f"*Searched for: {md_text(turn.answer.search_query)}*", ""]
        parts.append(answer_markdown(turn.answer))
    return "\n".join(parts).rstrip("\n") + "\n"
