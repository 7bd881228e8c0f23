"""The conversation store (SQLite beside the index) and the Markdown export of answers and conversations."""

import subprocess
import sys
import threading

import pytest
from markdown_it import MarkdownIt

from qa.types import Answer, Citation, Passage
from ui import conversations as store
from ui.conversations import (
    answer_markdown,
    append_turn,
    conversation_markdown,
    delete_conversation,
    list_conversations,
    load_conversation,
    rename_conversation,
)

from .conftest import ROOT


def _answer(question="Which drug killed him?", text="He was given GHB.", source="news/a.txt", line=3,
            search_query=None, page=None) -> Answer:
    citation = Citation(n=1, source=source, start=10, end=10 + len(text), text=text, chunk_id="c1", score=0.9,
                        line=line, page=page)
    return Answer(question=question, search_query=search_query or question, answer=f"{text.rstrip('.')} [1].",
                  abstained=False, citations=(citation,), passages=())


@pytest.fixture
def db(tmp_path):
    return store.store_path(tmp_path / "index")


def test_a_saved_conversation_survives_a_restart(db):
    first = append_turn(db, None, "Which drug killed him?", _answer(), collection="news")
    assert append_turn(db, first, "How old was he?", _answer("How old was he?", "He was 21.")) == first
    # a fresh process reads the same file
    code = ("import sys; from pathlib import Path; from ui.conversations import load_conversation as load; "
            "c = load(Path(sys.argv[1]), sys.argv[2]); "
            "print(c.title, c.collection, [t.answer.answer for t in c.turns], sep='|')")
    out = subprocess.run([sys.executable, "-c", code, str(db), first], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "Which drug killed him?|news|['He was given GHB [1].', 'He was 21 [1].']"


def test_turns_keep_the_answer_json_exactly(db):
    answer = _answer()
    conversation = load_conversation(db, append_turn(db, None, "Which drug killed him?", answer))
    assert conversation.turns[0].answer.to_json() == answer.to_json()
    assert conversation.to_json()["turns"][0]["answer"] == answer.to_json()
    assert conversation.summary_json()["turns"] == 1 and conversation.created <= conversation.updated


def test_listing_is_newest_first_with_titles_from_the_first_question(db):
    a = append_turn(db, None, "  first\n question  " + "x" * 200, _answer())
    b = append_turn(db, None, "second question", _answer())
    append_turn(db, a, "a follow-up", _answer())
    listed = list_conversations(db)
    assert [c.id for c in listed] == [a, b]
    assert listed[0].title.startswith("first question xxx") and len(listed[0].title) == store.MAX_TITLE_CHARS
    assert listed[0].title.endswith("\u2026") and listed[0].n_turns == 2 and listed[0].turns == ()
    assert listed[1].collection == "default"


def test_delete_and_rename(db):
    conversation = append_turn(db, None, "q", _answer())
    assert rename_conversation(db, conversation, "  Whitworth\ninquest ")
    assert load_conversation(db, conversation).title == "Whitworth inquest"
    assert delete_conversation(db, conversation)
    assert load_conversation(db, conversation) is None and list_conversations(db) == []
    assert not delete_conversation(db, conversation)
    assert not rename_conversation(db, conversation, "x")


@pytest.mark.parametrize("bad_id", ["", "nope", "0" * 31, "../../etc/passwd", "A" * 32, "0" * 32, None, 42])
def test_unknown_ids_are_none_not_errors(db, bad_id):
    append_turn(db, None, "q", _answer())
    assert load_conversation(db, bad_id) is None
    assert not delete_conversation(db, bad_id)


def test_appending_to_a_deleted_conversation_starts_a_new_one(db):
    gone = append_turn(db, None, "q", _answer())
    delete_conversation(db, gone)
    again = append_turn(db, gone, "asked in another tab", _answer())
    assert again != gone and load_conversation(db, again).title == "asked in another tab"


def test_turns_are_capped_keeping_the_latest(db, monkeypatch):
    monkeypatch.setattr(store, "MAX_TURNS", 3)
    conversation = None
    for i in range(7):
        conversation = append_turn(db, conversation, f"question {i}", _answer())
    turns = load_conversation(db, conversation).turns
    assert [t.question for t in turns] == ["question 4", "question 5", "question 6"]
    assert load_conversation(db, conversation).title == "question 0"


def test_conversations_are_capped_dropping_the_least_recent(db, monkeypatch):
    monkeypatch.setattr(store, "MAX_CONVERSATIONS", 3)
    ids = [append_turn(db, None, f"conversation {i}", _answer()) for i in range(3)]
    append_turn(db, ids[0], "the oldest is used again", _answer())
    newest = append_turn(db, None, "one more", _answer())
    assert [c.id for c in list_conversations(db)] == [newest, ids[0], ids[2]]


def test_the_file_stays_under_the_byte_budget(db, monkeypatch):
    monkeypatch.setattr(store, "MAX_STORE_BYTES", 200_000)
    big = _answer(text="A long sentence. " * 600)  # about 20 kB of JSON per turn
    conversation = None
    for i in range(40):
        conversation = append_turn(db, None if i % 4 == 0 else conversation, f"q{i}", big)
    assert db.stat().st_size < 400_000  # the budget, plus free pages and the header
    listed = list_conversations(db)
    assert listed[0].id == conversation and len(listed) < 10


def test_unicode_round_trips(db):
    question = "¿Quién ganó? 東京の天気 🚀 \u202eRTL"
    answer = _answer(question, "Zoë paid £17 — naïve 東京 🚀.", source="docs/résumé 東京.md")
    conversation = load_conversation(db, append_turn(db, None, question, answer, collection="Колекція"))
    assert conversation.title == question and conversation.collection == "Колекція"
    assert conversation.turns[0].answer == answer and conversation.turns[0].question == question


def test_concurrent_appends_from_threads_all_land(db):
    shared = append_turn(db, None, "shared", _answer())
    errors, own = [], []

    def work(i):
        try:
            mine = None
            for j in range(10):
                append_turn(db, shared, f"t{i}-{j}", _answer())
                mine = append_turn(db, mine, f"own {i}-{j}", _answer())
            own.append(mine)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    turns = load_conversation(db, shared).turns
    assert len(turns) == 81 and len({t.question for t in turns}) == 81
    assert sorted(c.n_turns for c in list_conversations(db)) == [10] * 8 + [81]


def test_an_unusable_store_is_a_one_line_qa_error(tmp_path):
    from index.errors import QAError

    path = tmp_path / store.STORE_FILE
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(QAError, match="conversation store .* cannot be used"):
        list_conversations(path)


# -- Markdown ------------------------------------------------------------------------------------

def test_answer_markdown_lists_each_citation_with_its_exact_text():
    answer = _answer(text="Mr Whitworth, 21, was given\na fatal dose of GHB.", source="002_x.txt", line=22)
    assert answer_markdown(answer) == (
        "Mr Whitworth, 21, was given a fatal dose of GHB [1].\n\n"
        '- [1] `002_x.txt` (lines 22-23): "Mr Whitworth, 21, was given a fatal dose of GHB."\n')
    assert "(page 4, line 9)" in answer_markdown(_answer(page=4, line=9))


def _rendered_text(markdown: str) -> str:
    tokens = MarkdownIt("commonmark").enable("strikethrough").parse(markdown)
    return "".join(child.content for t in tokens if t.type == "inline" for child in t.children
                   if child.type in ("text", "code_inline", "softbreak"))


def test_markdown_shows_document_text_as_text():
    hostile = "1. *Not bold* <script>alert(1)</script> [2](http://x) & ~~kept~~ _x_ `code` \\n."
    answer = _answer(text=hostile)
    markdown = answer_markdown(answer)
    html = MarkdownIt("commonmark").enable("strikethrough").render(markdown)
    assert "<script>" not in html and "<em>" not in html and "<a " not in html and "<s>" not in html
    assert "<code>" not in html.split("<li>")[0]  # only the source name is code
    assert hostile in _rendered_text(markdown) and hostile.rstrip(".") + " [1]." in _rendered_text(markdown)


def test_abstentions_and_conflicts_say_so():
    passage = Passage(chunk_id="p", source="a.txt", start=0, end=9, text="Somewhere else.", line=5, score=0.3)
    abstained = Answer("q", "q", "The documents don't say.", True, (), (passage,))
    assert answer_markdown(abstained) == ("The documents don't say.\n\nClosest passages:\n\n"
                                          '- `a.txt` (line 5): "Somewhere else."\n')
    conflict = Answer("q", "q", "17 [1].", False, _answer(text="17.").citations, (), conflict=True)
    assert answer_markdown(conflict).startswith("*Sources differ: each account is shown with its own citation.*\n\n")


def test_conversation_markdown_has_a_heading_per_question(db):
    conversation = append_turn(db, None, "Which drug killed him?", _answer())
    append_turn(db, conversation, "How old was he?", _answer("How old was he?", "He was 21.",
                                                              search_query="How old was Daniel Whitworth?"))
    saved = load_conversation(db, conversation)
    markdown = conversation_markdown(saved)
    assert markdown == (
        f"# Which drug killed him?\n\nCollection: default. Started {store.iso_time(saved.created)}, "
        f"last question {store.iso_time(saved.updated)}.\n\n"
        "## Which drug killed him?\n\nHe was given GHB [1].\n\n"
        '- [1] `news/a.txt` (line 3): "He was given GHB."\n\n'
        "## How old was he?\n\n*Searched for: How old was Daniel Whitworth?*\n\nHe was 21 [1].\n\n"
        '- [1] `news/a.txt` (line 3): "He was 21."\n')


def test_markdown_of_a_real_answer_quotes_the_source_exactly(seed_qa):
    answer = seed_qa.ask("How old was Daniel Whitworth?")
    markdown = answer_markdown(answer)
    for c in answer.citations:
        assert seed_qa.source_text(c.source)[c.start:c.end] == c.text
        last = c.line + c.text.count("\n")  # a citation that runs over lines names them all: "lines 22-24"
        place = f"line {c.line}" if last == c.line else f"lines {c.line}-{last}"
        assert f'- [{c.n}] `{c.source}` ({place})' in markdown
        assert f'"{" ".join(c.text.split())}"' in _rendered_text(markdown)
