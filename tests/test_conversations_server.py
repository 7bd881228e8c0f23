"""Saved conversations against a live `qa serve`: asked in the chat, listed, exported and deleted over REST,
kept across a restart, reopened and copied in a real browser."""

import shutil

import httpx
import pytest

from .conftest import SEEDS
from .test_server import _ask, _browser, start_server, stop_server

pytestmark = pytest.mark.slow
QUESTION = "Which drug killed Daniel Whitworth?"


@pytest.fixture(scope="module")
def index_dir(seed_settings, tmp_path_factory):
    """A copy of the seed index, so the conversations saved here are these tests' own."""
    target = tmp_path_factory.mktemp("conversations") / "index"
    shutil.copytree(seed_settings.index_dir, target)
    return target


@pytest.fixture(scope="module")
def server(index_dir):
    proc, url = start_server(SEEDS, index_dir)
    yield url
    stop_server(proc)


def _chat(url: str, *questions: str) -> None:
    """Ask in one chat session through the chat's own Gradio endpoint, as the browser does."""
    from gradio_client import Client

    client = Client(url + "/", verbose=False)
    for question in questions:
        client.predict(question, 5, "hybrid", api_name="/chat")


def _saved(url: str, title: str, **kwargs) -> dict:
    listed = httpx.get(url + "/api/conversations", **kwargs).json()["conversations"]
    return next(c for c in listed if c["title"] == title)


def test_a_chat_is_saved_and_exported_with_its_exact_citations(server):
    _chat(server, QUESTION, "How old was he?")
    summary = _saved(server, QUESTION)
    assert summary["turns"] == 2 and summary["collection"] == "default"
    assert summary["created"].endswith("Z") and summary["updated"] >= summary["created"]
    saved = httpx.get(f"{server}/api/conversations/{summary['id']}").json()
    first, second = (turn["answer"] for turn in saved["turns"])
    assert [t["question"] for t in saved["turns"]] == [QUESTION, "How old was he?"]
    assert "GHB" in first["answer"] and second["search_query"] == "How old was Daniel Whitworth?"
    for citation in first["citations"] + second["citations"]:
        source = httpx.get(f"{server}/api/sources/{citation['source']}").text
        assert source[citation["start"]:citation["end"]] == citation["text"]

    export = httpx.get(f"{server}/api/conversations/{summary['id']}/markdown")
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/markdown; charset=utf-8"
    assert export.headers["content-disposition"].startswith("attachment; filename=")
    assert export.headers["content-security-policy"]  # behind the same middleware as the rest
    markdown = export.text
    assert markdown.startswith(f"# {QUESTION}\n\nCollection: default. Started {summary['created']}")
    assert f"\n## {QUESTION}\n\n" in markdown and "\n## How old was he?\n\n" in markdown
    assert "*Searched for: How old was Daniel Whitworth?*" in markdown
    for c in first["citations"] + second["citations"]:
        lines = f"line {c['line']}" if "\n" not in c["text"] else f"lines {c['line']}-"
        assert f"- [{c['n']}] `{c['source']}` ({lines}" in markdown
        assert f'"{" ".join(c["text"].split())}"' in markdown


def test_conversations_survive_a_restart(index_dir, server):
    _chat(server, "Who was jailed for the murders?")
    proc, url = start_server(SEEDS, index_dir)
    try:
        summary = _saved(url, "Who was jailed for the murders?")
        assert httpx.get(f"{url}/api/conversations/{summary['id']}").json()["turns"][0]["answer"]["citations"]
    finally:
        stop_server(proc)


def test_delete_then_unknown_ids_are_404_json(server):
    _chat(server, "What was Stephen Port's job?")
    conversation = _saved(server, "What was Stephen Port's job?")["id"]
    deleted = httpx.delete(f"{server}/api/conversations/{conversation}")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": conversation}
    assert conversation not in {c["id"] for c in httpx.get(server + "/api/conversations").json()["conversations"]}
    for method, path in [("GET", conversation), ("GET", f"{conversation}/markdown"), ("DELETE", conversation),
                         ("GET", "0" * 32), ("GET", "not-an-id"), ("GET", "..%2F..%2Fetc%2Fpasswd/markdown")]:
        response = httpx.request(method, f"{server}/api/conversations/{path}")
        assert response.status_code == 404, path
        assert "error" in response.json()
    assert httpx.post(f"{server}/api/conversations/{conversation}").status_code == 405


def test_the_routes_are_documented(server):
    spec = httpx.get(server + "/openapi.json").json()
    assert {"/api/conversations", "/api/conversations/{conversation_id}",
            "/api/conversations/{conversation_id}/markdown"} <= set(spec["paths"])
    assert "delete" in spec["paths"]["/api/conversations/{conversation_id}"]
    assert "text/markdown" in spec["paths"]["/api/conversations/{conversation_id}/markdown"]["get"]["responses"][
        "200"]["content"]
    assert "HTTPValidationError" not in str(spec)  # every error is documented as {"error": ...}


def test_the_routes_need_the_token_when_one_is_set(index_dir):
    proc, url = start_server(SEEDS, index_dir, env_extra={"QA_TOKEN": "s3cret"})
    try:
        auth = {"Authorization": "Bearer s3cret"}
        listed = httpx.get(url + "/api/conversations", headers=auth).json()["conversations"]
        assert listed
        some = listed[0]["id"]
        for method, path in [("GET", ""), ("GET", f"/{some}"), ("GET", f"/{some}/markdown"), ("DELETE", f"/{some}")]:
            response = httpx.request(method, f"{url}/api/conversations{path}")
            assert response.status_code == 401 and "error" in response.json(), path
        assert httpx.get(f"{url}/api/conversations/{some}", headers=auth).status_code == 200
    finally:
        stop_server(proc)


@pytest.mark.browser
def test_browser_reload_lists_the_conversation_and_reopens_it(server):
    from playwright.sync_api import sync_playwright

    question = QUESTION
    with sync_playwright() as p:
        browser = _browser(p)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
        page = context.new_page()
        page.goto(server + "/")
        _ask(page, question)
        page.locator("#qa-chat a.qa-cite").first.wait_for(timeout=30_000)
        answer = page.locator("#qa-chat .qa-copy").first
        answer.click()
        page.wait_for_function("document.querySelector('#qa-chat .qa-copy').textContent.startsWith('Copied')")
        copied = page.evaluate("navigator.clipboard.readText()")
        saved = _saved(server, question)
        detail = httpx.get(f"{server}/api/conversations/{saved['id']}").json()["turns"][0]["answer"]
        citation = detail["citations"][0]
        assert copied.startswith(detail["answer"].split("[1]")[0]) and "<a" not in copied
        assert f'- [1] `{citation["source"]}` (line {citation["line"]}' in copied
        assert f'"{" ".join(citation["text"].split())}"' in copied

        page.reload()
        page.locator("#qa-saved").wait_for()
        page.locator("#qa-saved input").click()
        option = page.get_by_role("option", name=question).first
        option.click()
        page.locator("#qa-chat a.qa-cite").first.wait_for(timeout=30_000)
        assert question in page.locator("#qa-chat").inner_text()
        assert citation["text"][:40] in page.locator("#qa-cards").inner_text()

        link = page.locator("#qa-export a")
        assert link.get_attribute("href") == f"/api/conversations/{saved['id']}/markdown"
        exported = page.request.get(server + link.get_attribute("href"))
        assert exported.headers["content-type"] == "text/markdown; charset=utf-8"
        assert exported.text().startswith(f"# {question}\n")

        _ask(page, "How old was he?")  # a follow-up in the reopened conversation resolves against it
        page.get_by_text("searched for:").first.wait_for(timeout=30_000)
        assert _saved(server, question)["turns"] == 2

        page.once("dialog", lambda dialog: dialog.accept())  # Delete asks first
        page.click("#qa-delete")
        page.wait_for_function("!document.querySelector('#qa-chat a.qa-cite')", timeout=10_000)
        assert saved["id"] not in {c["id"] for c in httpx.get(server + "/api/conversations").json()["conversations"]}
        browser.close()
