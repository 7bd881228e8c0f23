"""How the chat looks to a user (issue 24): at 1280x800, on a 390x844 phone and in dark mode, in a real browser."""

import shutil

import httpx
import pytest

from .conftest import ROOT, SEEDS
from .test_server import _browser, _contrast, start_server, stop_server

pytestmark = [pytest.mark.slow, pytest.mark.browser]
OUTPUT = ROOT / "test-output"
VIEWS = {"desktop": ((1280, 800), "light"), "phone": ((390, 844), "light"), "dark": ((1280, 800), "dark")}


@pytest.fixture(scope="module")
def server(seed_settings, tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("look") / "index"
    shutil.copytree(seed_settings.index_dir, index_dir)
    proc, url = start_server(SEEDS, index_dir)
    yield url
    stop_server(proc)


def _page(playwright, view: str):
    (width, height), scheme = VIEWS[view]
    browser = _browser(playwright)
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme,
                                  is_mobile=view == "phone", has_touch=view == "phone")
    return browser, context.new_page()


def _ask(page, question: str, answers: int) -> None:
    page.fill("#qa-input textarea", question)
    page.click("#qa-ask")
    page.wait_for_function(f"document.querySelectorAll('#qa-chat .qa-copy').length >= {answers}", timeout=60_000)


@pytest.mark.parametrize("view", list(VIEWS))
def test_an_abstention_shows_its_closest_passages_once_by_rank_not_score(server, view):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _page(p, view)
        page.goto(server + "/")
        _ask(page, "What was the weather in Barking?", 1)
        page.wait_for_timeout(500)
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"look-abstain-{view}.png"))
        visible = page.locator(".qa-card:visible")
        assert visible.count() == 3  # they were shown twice: in the answer and in the Sources panel
        assert [visible.nth(i).locator(".qa-n").inner_text() for i in range(3)] == ["#1", "#2", "#3"]
        assert "score" not in page.inner_text("body")  # a fusion score (0.016) means nothing to a reader
        browser.close()


@pytest.mark.parametrize("view", list(VIEWS))
def test_the_layout_is_tidy(server, view):
    from playwright.sync_api import sync_playwright

    (width, height), scheme = VIEWS[view]
    with sync_playwright() as p:
        browser, page = _page(p, view)
        page.goto(server + "/")
        _ask(page, "Which drug killed Daniel Whitworth?", 1)
        _ask(page, "How old was he?", 2)
        page.wait_for_timeout(500)
        page.screenshot(path=str(OUTPUT / f"look-{view}.png"))
        # The chat's "Conversation" label sat on top of the first message once scrolled.
        assert page.get_by_text("Conversation", exact=True).filter(visible=True).count() == 0
        # Card headers read from the left in every panel.
        for head in page.locator(".qa-card-head:visible").all():
            assert head.evaluate("el => getComputedStyle(el).textAlign") in ("left", "start")
        # The question box and its button share one row; no button label wraps; nothing is wider than the screen.
        box, ask = page.locator("#qa-input").bounding_box(), page.locator("#qa-ask").bounding_box()
        assert abs(box["y"] - ask["y"]) < 20 and box["width"] > 2 * ask["width"] and ask["height"] <= box["height"] + 2
        for button in ("#qa-clear", "#qa-delete"):  # one line of text each ("New conversation" wrapped)
            assert page.locator(button).bounding_box()["height"] < 40, button
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert not page.locator("footer").inner_text().strip().endswith("\u00b7")  # a stray separator
        if view != "phone":  # what to ask about is in view without scrolling
            for control in ("#qa-collection", "#qa-saved", "#qa-documents", "#qa-input"):
                found = page.locator(control).bounding_box()
                assert found["y"] + found["height"] <= height, control
        if scheme == "dark":
            assert _contrast(page, "#qa-title p") >= 4.5
        browser.close()


def test_delete_asks_first_and_says_when_there_is_nothing_to_delete(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _page(p, "desktop")
        page.goto(server + "/")
        asked = []
        page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        page.click("#qa-delete")  # nothing open: said so, and no question asked
        page.get_by_text("Nothing to delete").first.wait_for(timeout=10_000)
        assert asked == [] and "no longer saved" not in page.inner_text("body")
        question = "What sentence was Port given?"
        _ask(page, question, 1)
        page.wait_for_function("document.querySelector('#qa-saved input').value !== ''", timeout=10_000)
        page.click("#qa-delete")  # dismissed: kept
        page.wait_for_timeout(1500)
        assert asked and "cannot be undone" in asked[0]
        saved = httpx.get(server + "/api/conversations").json()["conversations"]
        assert question in [c["title"] for c in saved]
        browser.close()
