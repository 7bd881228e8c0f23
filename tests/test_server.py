"""Against a live `qa serve` started by the test: REST routes, the Gradio endpoint, and a real browser."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, SEEDS

pytestmark = pytest.mark.slow
OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(corpus: Path, index_dir: Path, args: tuple[str, ...] = (), env_extra: dict | None = None):
    port = _free_port()
    env = {**os.environ, "QA_CORPUS": str(corpus), "QA_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", **(env_extra or {})}
    env = {k: v for k, v in env.items() if v is not None}  # env_extra may unset a variable with None
    proc = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--port", str(port), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                proc.url = url
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start in 180 s")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # open keep-alive/SSE connections can hold uvicorn's graceful exit
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(seed_settings):
    proc, url = start_server(SEEDS, seed_settings.index_dir)
    yield url
    stop_server(proc)


def test_the_server_looks_up_no_host_but_its_own(tmp_path, seed_settings):
    """Offline by design: starting `qa serve` and opening the chat resolves no outside name (Gradio would look
    up api.gradio.app and huggingface.co for its version check and analytics)."""
    spy, log = tmp_path / "spy", tmp_path / "lookups.txt"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(
        "import socket\n_lookup = socket.getaddrinfo\n"
        "def _logged(host, *args, **kwargs):\n"
        f"    with open({str(log)!r}, 'a') as f:\n        f.write(f'{{host}}\\n')\n"
        "    return _lookup(host, *args, **kwargs)\n"
        "socket.getaddrinfo = _logged\n")
    proc, url = start_server(SEEDS, seed_settings.index_dir,
                             env_extra={"PYTHONPATH": str(spy), "GRADIO_ANALYTICS_ENABLED": None})
    try:
        assert httpx.get(url + "/", timeout=30).status_code == 200
        time.sleep(3)  # Gradio's checks run on threads of their own after the start
    finally:
        stop_server(proc)
    looked_up = set(log.read_text().split()) if log.exists() else set()
    assert looked_up <= {"127.0.0.1", "localhost", "::1"}, looked_up


def test_healthz(server):
    body = httpx.get(server + "/healthz").json()
    assert body == {"status": "ok", "documents": 2, "chunks": 37}


def test_ask_returns_the_answer_json_with_exact_citations(server):
    body = httpx.post(server + "/api/ask", json={"question": "Which drug killed Daniel Whitworth?", "k": 3}).json()
    assert "GHB" in body["answer"] and not body["abstained"] and len(body["passages"]) == 3
    for c in body["citations"]:
        source = httpx.get(f"{server}/api/sources/{c['source']}").text
        assert source[c["start"]:c["end"]] == c["text"]


def test_ask_resolves_follow_ups_from_history(server):
    body = httpx.post(server + "/api/ask", json={"question": "How old was he?", "history": [
        ["Which drug killed Daniel Whitworth?", "GHB"]]}).json()
    assert body["search_query"] == "How old was Daniel Whitworth?" and "21" in body["answer"]


def test_ask_resolves_follow_ups_that_open_with_and(server):
    answer = "Mr Whitworth, 21, was killed by Port after being given a fatal dose of the date rape drug GHB [1]."
    history = [["Which drug killed Daniel Whitworth?", answer]]
    body = httpx.post(server + "/api/ask", json={"question": "and who is his stepmother?", "history": history}).json()
    assert body["search_query"] == "Who is Daniel Whitworth's stepmother?" and not body["abstained"]
    assert "Mandy Pearson" in body["answer"]


def test_source_route_serves_canonical_text(server):
    response = httpx.get(server + "/api/sources/000_66c9290ad1937cce.txt")
    assert response.status_code == 200
    assert response.text == (SEEDS / "000_66c9290ad1937cce.txt").read_bytes().decode("utf-8")


@pytest.mark.parametrize("path", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "nope.txt",
                                  "%2e%2e/%2e%2e/etc/passwd", "seeds/000_66c9290ad1937cce.txt"])
def test_only_indexed_sources_are_served(server, path):
    response = httpx.get(f"{server}/api/sources/{path}")
    assert response.status_code == 404
    assert "root:" not in response.text


@pytest.mark.parametrize("payload, status", [
    ({"question": ""}, 400), ({"question": "   "}, 400), ({"question": "x" * 5000}, 422),
    ({"question": "hi", "k": 0}, 422), ({"question": "hi", "k": "many"}, 422), ({"question": 42}, 422),
    ({"question": "hi", "mode": "magic"}, 422), ({"history": []}, 422), ({"question": "hi", "history": "x"}, 422),
])
def test_bad_requests_get_4xx_json(server, payload, status):
    response = httpx.post(server + "/api/ask", json=payload)
    assert response.status_code == status
    assert "error" in response.json()


def test_an_empty_question_on_rest_is_told_what_to_send_not_a_cli_command(server):
    error = httpx.post(server + "/api/ask", json={"question": " "}).json()["error"]
    assert error.startswith("The question is empty") and "qa ask" not in error


def test_malformed_body_is_422_not_500(server):
    response = httpx.post(server + "/api/ask", content=b"\xff\xfenot json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_openapi_docs_list_the_routes(server):
    spec = httpx.get(server + "/openapi.json").json()
    assert {"/api/ask", "/api/sources/{source}", "/healthz"} <= set(spec["paths"])
    assert httpx.get(server + "/docs").status_code == 200


def test_gradio_client_gets_a_cited_answer(server):
    from gradio_client import Client

    client = Client(server + "/", verbose=False)
    chat, cards, box = client.predict("Which drug killed Daniel Whitworth?", 5, "hybrid", api_name="/chat")
    content = chat[-1]["content"]
    text = content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)
    assert "GHB <a class=\"qa-cite\" href=\"/view/002_20261bb465ea9f56.txt?start=" in text
    assert "002_20261bb465ea9f56.txt:22" in cards


# -- browser -----------------------------------------------------------------------------------

def _browser(playwright):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"])


def _ask(page, question: str) -> None:
    page.fill("#qa-input textarea", question)
    page.click("#qa-ask")


@pytest.mark.browser
def test_browser_chat_cites_and_opens_the_source(server):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server + "/")
        _ask(page, "Which drug killed Daniel Whitworth?")
        card = page.locator("#qa-cards .qa-card").first
        card.wait_for(timeout=30_000)
        span = card.locator(".qa-span").inner_text()
        citation = httpx.post(server + "/api/ask", json={"question": "Which drug killed Daniel Whitworth?"}).json()
        assert span == citation["citations"][0]["text"]
        assert "GHB [1]" in page.locator("#qa-chat").inner_text()

        _ask(page, "How old was he?")
        page.get_by_text("searched for: How old was Daniel Whitworth?").first.wait_for(timeout=30_000)
        page.screenshot(path=str(OUTPUT / "chat.png"), full_page=True)

        with page.context.expect_page() as popup:
            page.locator("#qa-cards .qa-card").first.click()
        source_page = popup.value
        source_page.wait_for_load_state()
        assert "Mr Whitworth, 21," in source_page.locator("mark#span").inner_text()
        source_page.screenshot(path=str(OUTPUT / "source.png"))

        page.click("#qa-clear")
        page.wait_for_function("!document.querySelector('#qa-cards .qa-card')", timeout=10_000)
        browser.close()


@pytest.mark.browser
def test_hostile_document_renders_as_text(tmp_path):
    from playwright.sync_api import sync_playwright

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    hostile = ('The vault password is <img src=x onerror="window.__pwned=1"> kept by Eve Marsh.\n\n'
               'Eve Marsh guards the <script>window.__pwned=2</script> vault at night.')
    (corpus / "hostile.txt").write_text(hostile, encoding="utf-8")
    proc, url = start_server(corpus, tmp_path / "index")
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_page()
            page.goto(url + "/")
            _ask(page, "Who keeps the vault password?")
            page.locator("#qa-cards .qa-card").first.wait_for(timeout=30_000)
            assert "<img src=x" in page.locator("#qa-cards").inner_text()
            assert "<img src=x" in page.locator("#qa-chat").inner_text()
            assert page.evaluate("window.__pwned") is None
            assert page.locator("#qa-cards img, #qa-chat img[src='x']").count() == 0
            with page.context.expect_page() as popup:
                page.locator("#qa-cards .qa-card").first.click()
            view = popup.value
            view.wait_for_load_state()
            assert "<script>" in view.locator("#source-text").inner_text()
            assert view.evaluate("window.__pwned") is None
            browser.close()
    finally:
        stop_server(proc)


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(float(v)) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])


def _contrast(page, selector: str) -> float:
    """WCAG contrast ratio of an element's text colour against its own (or nearest painted) background."""
    fg, bg = page.locator(selector).first.evaluate("""el => {
        let bg = el, c = getComputedStyle(el).color;
        while (bg && ['rgba(0, 0, 0, 0)', 'transparent'].includes(getComputedStyle(bg).backgroundColor))
            bg = bg.parentElement;
        return [c, bg ? getComputedStyle(bg).backgroundColor : 'rgb(255, 255, 255)'];
    }""")

    def luminance(rgb):
        lin = [(v / 255) / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    high, low = sorted((luminance(_rgb(fg)), luminance(_rgb(bg))), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.browser
def test_browser_citation_marker_opens_the_cited_span(server):
    from playwright.sync_api import sync_playwright

    question = "Which drug killed Daniel Whitworth?"
    citation = httpx.post(server + "/api/ask", json={"question": question}).json()["citations"][0]
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server + "/")
        _ask(page, question)
        marker = page.locator("#qa-chat a.qa-cite").first
        marker.wait_for(timeout=30_000)
        assert marker.inner_text() == "[1]"
        with page.context.expect_page() as popup:
            marker.click()
        view = popup.value
        view.wait_for_load_state()
        assert view.url.endswith(f"/view/{citation['source']}?start={citation['start']}&end={citation['end']}#span")
        assert view.locator("mark#span").inner_text() == citation["text"]
        browser.close()


@pytest.mark.browser
def test_browser_phone_shows_each_answers_sources_under_it(server):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(server + "/")
        _ask(page, "Which drug killed Daniel Whitworth?")
        page.locator("#qa-chat .qa-sources .qa-card").first.wait_for(timeout=30_000)
        _ask(page, "How old was he?")
        page.get_by_text("searched for: How old was Daniel Whitworth?").first.wait_for(timeout=30_000)
        assert page.locator("#qa-chat .qa-sources").count() == 2  # each answer keeps its own sources
        latest = page.locator("#qa-chat .qa-sources").last
        assert "Mr Whitworth, 21," in latest.locator(".qa-span").first.inner_text()
        marker = page.locator("#qa-chat a.qa-cite").last
        marker.scroll_into_view_if_needed()
        card = latest.locator(".qa-card").first.bounding_box()
        assert 0 <= card["y"] - marker.bounding_box()["y"] < 844 - card["height"] / 2
        latest.locator(".qa-card").first.scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT / "chat-mobile.png"))
        browser.close()


@pytest.mark.browser
def test_browser_dark_mode_keeps_banner_cards_and_source_readable(tmp_path):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    proc, url = start_server(ROOT / "eval" / "data" / "harbour", tmp_path / "index")  # a corpus whose sources differ
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 900}).new_page()
            page.goto(url + "/")
            _ask(page, "What was the weather in Barking?")
            page.locator("#qa-cards .qa-abstain").wait_for(timeout=30_000)
            assert _contrast(page, "#qa-cards .qa-abstain") >= 4.5
            _ask(page, "How much will the harbour wall repairs cost?")
            page.locator("#qa-cards .qa-conflict").wait_for(timeout=30_000)
            for selector in ("#qa-cards .qa-conflict", "#qa-chat .qa-conflict", "#qa-cards .qa-ctx", "#qa-chat .qa-ctx",
                             "#qa-cards .qa-src", "#qa-cards .qa-span", "#qa-chat a.qa-cite"):
                assert _contrast(page, selector) >= 4.5, selector
            page.screenshot(path=str(OUTPUT / "chat-dark.png"))
            with page.context.expect_page() as popup:
                page.locator("#qa-cards .qa-card").first.click()
            view = popup.value
            view.wait_for_load_state()
            for selector in ("#source-text", "mark#span"):
                assert _contrast(view, selector) >= 4.5, selector
            view.screenshot(path=str(OUTPUT / "source-dark.png"))
            browser.close()
    finally:
        stop_server(proc)
