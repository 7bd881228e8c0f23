"""Collections: a named index per folder, from the command line, REST and the chat, each answering only from its own."""

import json

import httpx
import pytest

from .conftest import SEEDS
from .test_cli import run_qa
from .test_server import _browser, start_server, stop_server

FERRY = "# Ferries\n\nThe Rye ferry timetable was changed in March. The first boat to Camber leaves from the east pier.\n"
QUESTION = "Where does the first boat to Camber leave from?"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """An index root with the default collection (seeds/) and a collection `boats` made from another folder."""
    root = tmp_path_factory.mktemp("collections")
    docs = root / "boats-docs"
    docs.mkdir()
    (docs / "ferry.md").write_text(FERRY, encoding="utf-8")
    index_dir = root / "index"
    env = {"QA_CORPUS": str(SEEDS)}
    assert run_qa("index", index_dir=index_dir, env_extra=env).returncode == 0
    made = run_qa("index", str(docs), "--collection", "boats", index_dir=index_dir, env_extra=env)
    assert made.returncode == 0, made.stderr
    assert "into collection 'boats'" in made.stdout
    return index_dir, docs, env


def test_each_collection_answers_from_its_own_documents(library):
    index_dir, _, env = library
    boats = json.loads(run_qa("ask", QUESTION, "--json", "--collection", "boats", index_dir=index_dir,
                              env_extra=env).stdout)
    assert boats["citations"] and {c["source"] for c in boats["citations"]} == {"ferry.md"}
    assert "east pier" in boats["answer"]
    default = json.loads(run_qa("ask", QUESTION, "--json", index_dir=index_dir, env_extra=env).stdout)
    assert "ferry.md" not in {p["source"] for p in default["passages"]}
    via_env = run_qa("source", "--list", index_dir=index_dir, env_extra={**env, "QA_COLLECTION": "boats"})
    assert via_env.stdout.split() == ["ferry.md"]


def test_collections_lists_counts_size_and_folder(library):
    index_dir, docs, env = library
    listed = json.loads(run_qa("collections", "--json", index_dir=index_dir, env_extra=env).stdout)
    assert [c["name"] for c in listed] == ["default", "boats"]
    boats = listed[1]
    assert (boats["documents"], boats["chunks"], boats["corpus"], boats["uploads"]) == (1, 1, str(docs), False)
    assert boats["bytes"] > 0 and boats["indexed_at"] > 0
    assert listed[0]["documents"] == len(list(SEEDS.glob("[!.]*.txt")))
    table = run_qa("collections", index_dir=index_dir, env_extra=env).stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "DOCS", "CHUNKS", "SIZE"]
    assert table[2].split()[:3] == ["boats", "1", "1"] and table[2].endswith(str(docs))


@pytest.mark.parametrize("args, message", [
    (("ask", "What?", "--collection", "nope"), "No collection named 'nope'"),
    (("ask", "What?", "--collection", "../x"), "collection names are"),
    (("index", "--collection", "Upper"), "collection names are"),
    (("index", "--collection", "never-made"), "make it with `qa index FOLDER --collection never-made`"),
    (("collections", "delete", "default"), "cannot be deleted"),
    (("collections", "delete", "nope"), "No collection named 'nope'"),
    (("collections", "delete"), "say which collection"),
])
def test_bad_collection_requests_are_one_line_usage_errors(library, args, message):
    index_dir, _, env = library
    result = run_qa(*args, index_dir=index_dir, env_extra=env)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_reindexing_a_collection_reuses_its_folder_and_says_when_it_moves(tmp_path):
    docs, other = tmp_path / "a", tmp_path / "b"
    docs.mkdir(), other.mkdir()
    (docs / "ferry.md").write_text(FERRY, encoding="utf-8")
    (other / "bus.md").write_text("# Buses\n\nThe 100 bus runs hourly from Rye station.\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    assert run_qa("index", str(docs), "--collection", "t", index_dir=index_dir).returncode == 0
    again = run_qa("index", "--collection", "t", index_dir=index_dir)  # no folder: the one it was made from
    assert again.returncode == 0 and "1 unchanged" in again.stdout, again.stdout + again.stderr
    # Issue 24: re-pointing a collection dropped the documents of its folder with a note after the fact.
    asked = run_qa("index", str(other), "--collection", "t", index_dir=index_dir)
    assert asked.returncode == 2 and "--replace" in asked.stderr and f"indexes {docs} (1 document)" in asked.stderr
    assert run_qa("source", "--list", "--collection", "t", index_dir=index_dir).stdout.split() == ["ferry.md"]
    moved = run_qa("index", str(other), "--collection", "t", "--replace", index_dir=index_dir)
    assert moved.returncode == 0 and f"it now indexes {other}" in moved.stderr
    assert run_qa("source", "--list", "--collection", "t", index_dir=index_dir).stdout.split() == ["bus.md"]


def _ferry_collection(tmp_path, name: str):
    """(docs folder, index root) with a collection `name` indexed from a folder holding FERRY."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text(FERRY, encoding="utf-8")
    index_dir = tmp_path / "index"
    assert run_qa("index", str(docs), "--collection", name, index_dir=index_dir).returncode == 0
    return docs, index_dir


_KILLED_MID_COMMIT = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size=1")  # pages reach the file before the commit, as in a big real one
conn.execute("BEGIN IMMEDIATE")
conn.execute("DELETE FROM chunks")
conn.execute("DELETE FROM documents")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_collection_killed_mid_commit_still_answers(tmp_path):
    # Hostile-tester finding: the hot journal a killed commit leaves made every read-only open fail, so the
    # collection looked missing ("No collection named ...") until someone re-indexed it by folder.
    import subprocess
    import sys

    _, index_dir = _ferry_collection(tmp_path, "nc")
    store = index_dir / "collections" / "nc" / "index.sqlite"
    subprocess.run([sys.executable, "-c", _KILLED_MID_COMMIT, str(store)], check=False)
    assert store.with_name("index.sqlite-journal").exists()
    listed = run_qa("collections", index_dir=index_dir).stdout
    assert any(line.split()[:3] == ["nc", "1", "1"] for line in listed.splitlines()), listed
    asked = run_qa("ask", QUESTION, "--collection", "nc", index_dir=index_dir)
    assert asked.returncode == 0 and "east pier [1]" in asked.stdout, asked.stdout + asked.stderr


def test_a_damaged_collection_is_said_to_be_damaged_not_missing_and_can_be_deleted(tmp_path):
    _, index_dir = _ferry_collection(tmp_path, "dmg")
    (index_dir / "collections" / "dmg" / "index.sqlite").write_bytes(b"garbage")
    asked = run_qa("ask", "ferry", "--collection", "dmg", index_dir=index_dir)
    assert asked.returncode == 1 and "is damaged" in asked.stderr and "No collection" not in asked.stderr
    assert run_qa("collections", "delete", "dmg", index_dir=index_dir).returncode == 0


def test_deleting_a_collection_removes_its_index_not_its_documents(tmp_path):
    docs, index_dir = _ferry_collection(tmp_path, "gone")
    deleted = run_qa("collections", "delete", "gone", index_dir=index_dir)
    assert deleted.returncode == 0 and "Deleted collection 'gone'" in deleted.stdout
    assert (docs / "ferry.md").read_text(encoding="utf-8") == FERRY
    assert not (index_dir / "collections" / "gone").exists()
    assert "gone" not in run_qa("collections", index_dir=index_dir).stdout
    assert run_qa("ask", "What?", "--collection", "gone", index_dir=index_dir).returncode == 2


@pytest.mark.slow
def test_rest_lists_collections_and_answers_from_the_one_asked(library):
    index_dir, _, _ = library
    proc, url = start_server(SEEDS, index_dir)
    try:
        listed = httpx.get(url + "/api/collections").json()["collections"]
        assert [c["name"] for c in listed] == ["default", "boats"]
        answer = httpx.post(url + "/api/ask", json={"question": QUESTION, "collection": "boats"}).json()
        assert {c["source"] for c in answer["citations"]} == {"ferry.md"}
        text = httpx.get(url + "/api/sources/ferry.md", params={"collection": "boats"}).text
        c = answer["citations"][0]
        assert text[c["start"]:c["end"]] == c["text"]
        assert httpx.get(url + "/api/sources", params={"collection": "boats"}).json() == {"sources": ["ferry.md"]}
        # the default collection does not serve another collection's documents
        assert httpx.get(url + "/api/sources/ferry.md").status_code == 404
        missing = httpx.post(url + "/api/ask", json={"question": "What?", "collection": "nope"})
        assert missing.status_code == 404 and "No collection named 'nope'" in missing.json()["error"]
        for bad in ("../etc", "A", "", "x" * 41, "a\n"):
            refused = httpx.post(url + "/api/ask", json={"question": "What?", "collection": bad})
            assert refused.status_code == 422 and "collection" in refused.json()["error"]
        assert httpx.get(url + "/api/sources", params={"collection": "../../etc"}).status_code == 422
    finally:
        stop_server(proc)


@pytest.mark.slow
@pytest.mark.browser
def test_browser_picker_switches_collection_and_starts_a_new_conversation(library):
    from playwright.sync_api import sync_playwright

    index_dir, _, _ = library
    proc, url = start_server(SEEDS, index_dir)
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/")
            page.fill("#qa-input textarea", "Which drug killed Daniel Whitworth?")
            page.click("#qa-ask")
            page.locator("#qa-cards .qa-card").first.wait_for(timeout=30_000)
            page.click("#qa-collection input")
            page.get_by_role("option", name="boats").click()
            page.get_by_text("collection boats").wait_for(timeout=10_000)  # the title names it
            assert "Whitworth" not in page.locator("#qa-chat").inner_text()  # a new conversation
            page.fill("#qa-input textarea", QUESTION)
            page.click("#qa-ask")
            card = page.locator("#qa-cards .qa-card").first
            card.wait_for(timeout=30_000)
            assert "ferry.md" in card.inner_text()
            assert "collection=boats" in card.get_attribute("href")
            with page.context.expect_page() as popup:
                card.click()
            popup.value.wait_for_load_state()
            assert "east pier" in popup.value.locator("mark#span").inner_text()
            browser.close()
    finally:
        stop_server(proc)


def test_the_server_keeps_a_bounded_number_of_collections_open(tmp_path, monkeypatch):
    # Hostile-tester finding: every collection asked (one per upload, say) kept its Chroma store open for the
    # life of the server: 160 collections held 864 threads and 1,826 open files.
    from chromadb.api.client import SharedSystemClient

    import qa.library as library_module
    from index.build import build_index
    from index.collections import collection_settings
    from index.config import load_settings
    from qa.engine import QA
    from qa.library import Library

    monkeypatch.setattr(library_module, "MAX_OPEN_COLLECTIONS", 2)
    root = load_settings(corpus=SEEDS, index_dir=tmp_path / "index")
    names = [f"c{i}" for i in range(5)]
    for i, name in enumerate(names):
        docs = tmp_path / name
        docs.mkdir()
        (docs / "note.md").write_text(f"# Note {i}\n\nThe locker code is {1000 + i}.\n", encoding="utf-8")
        build_index(collection_settings(root, name, corpus=docs), docs)
    library = Library(root, QA(root))

    def open_stores() -> set[str]:
        return {path for path in SharedSystemClient._identifier_to_system if path.startswith(str(tmp_path))}

    for i, name in enumerate(names):
        assert str(1000 + i) in library.get(name).ask("What is the locker code?").answer
    assert len(open_stores()) <= 2 + 1  # the two most recent and the default
    assert "1000" in library.get("c0").ask("What is the locker code?").answer  # closed, reopened on demand


def test_indexing_another_folder_into_the_default_collection_asks_first(tmp_path):
    # Issue 24: `qa index PATH` without --collection silently replaced the demo corpus (make chat then served it).
    docs = tmp_path / "notes"
    docs.mkdir()
    (docs / "ferry.md").write_text(FERRY, encoding="utf-8")
    index_dir = tmp_path / "index"
    assert run_qa("index", index_dir=index_dir).returncode == 0  # the default collection, from seeds/
    asked = run_qa("index", str(docs), index_dir=index_dir)
    assert asked.returncode == 2 and "Traceback" not in asked.stderr
    assert f"collection 'default' indexes {SEEDS}" in asked.stderr
    assert "--replace" in asked.stderr and f"qa index {docs} --collection NAME" in asked.stderr
    assert len(run_qa("source", "--list", index_dir=index_dir).stdout.split()) == 2  # nothing was replaced
    replaced = run_qa("index", str(docs), "--replace", index_dir=index_dir)
    assert replaced.returncode == 0 and f"indexed {SEEDS} (2 documents); it now indexes {docs}" in replaced.stderr
    assert run_qa("source", "--list", index_dir=index_dir).stdout.split() == ["ferry.md"]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("size, scheme", [((1280, 800), "light"), ((390, 844), "dark")])
def test_browser_header_and_examples_describe_the_collection_shown(tmp_path, size, scheme):
    # Issue 24: after `qa index FOLDER` the header still said "documents in seeds" and the "Try" examples were the
    # seeds' questions in every collection (clicking them abstained).
    from playwright.sync_api import sync_playwright

    docs = tmp_path / "harbour-docs"
    docs.mkdir()
    (docs / "ferry.md").write_text(FERRY, encoding="utf-8")
    (docs / ".qa-examples.txt").write_text(QUESTION + "\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    assert run_qa("index", index_dir=index_dir).returncode == 0
    assert run_qa("index", str(docs), "--replace", index_dir=index_dir).returncode == 0
    assert run_qa("index", str(SEEDS), "--collection", "news", index_dir=index_dir).returncode == 0
    proc, url = start_server(SEEDS, index_dir)  # QA_CORPUS is still seeds/, as under `make chat`
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_context(viewport=dict(zip(("width", "height"), size)), color_scheme=scheme).new_page()
            page.goto(url + "/")
            title = page.locator("#qa-title")
            title.get_by_text("Answers from 1 document in harbour-docs").wait_for(timeout=30_000)
            assert "seeds" not in title.inner_text() and str(tmp_path) not in page.content()
            page.get_by_text(QUESTION).first.wait_for(timeout=10_000)
            assert "Which drug killed" not in page.inner_text("body")
            page.get_by_text(QUESTION).first.click()  # the example is this collection's: it answers
            page.wait_for_function(f"document.querySelector('#qa-input textarea').value === {QUESTION!r}")
            page.click("#qa-ask")
            card = page.locator(".qa-card:visible").first  # in the Sources panel, or on a phone under the answer
            try:
                card.wait_for(timeout=30_000)
            finally:
                page.screenshot(path=str(tmp_path / "asked.png"), full_page=True)
            assert "ferry.md" in card.inner_text()
            page.click("#qa-collection input")
            page.get_by_role("option", name="news").click()
            title.get_by_text("collection news").wait_for(timeout=10_000)
            page.get_by_text("Which drug killed Daniel Whitworth?").first.wait_for(timeout=10_000)
            assert QUESTION not in page.inner_text("body")
            browser.close()
    finally:
        stop_server(proc)
