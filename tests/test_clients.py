"""Clients that work as documented, against a live `qa serve`: the OpenAPI schema and /docs (offline, in
Chromium), and the typed Gradio endpoint through gradio_client."""

import json
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from .conftest import SEEDS
from .test_server import OUTPUT, _browser, start_server, stop_server

pytestmark = pytest.mark.slow
QUESTION = "Which drug killed Daniel Whitworth?"
HOSTNAME_FILE = Path("/etc/hostname")


@pytest.fixture(scope="module")
def live(seed_settings, tmp_path_factory):
    """A server with its own Gradio temp folder, so a test can see that nothing was copied into it."""
    gradio_tmp = tmp_path_factory.mktemp("gradio-tmp")
    proc, url = start_server(SEEDS, seed_settings.index_dir, env_extra={"GRADIO_TEMP_DIR": str(gradio_tmp)})
    yield url, gradio_tmp
    stop_server(proc)


@pytest.fixture(scope="module")
def spec(live):
    return httpx.get(live[0] + "/openapi.json").json()


# -- REST: the schema says what the server sends ------------------------------------------------------------

def _json_schema(spec, path, method, status):
    return spec["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]


@pytest.mark.parametrize("path, method, model", [
    ("/api/ask", "post", "AnswerJSON"), ("/api/sources", "get", "Sources"), ("/healthz", "get", "Health")])
def test_openapi_types_each_response(spec, path, method, model):
    assert _json_schema(spec, path, method, 200) == {"$ref": f"#/components/schemas/{model}"}
    assert spec["components"]["schemas"][model]["properties"]


@pytest.mark.parametrize("path, method, statuses", [
    ("/api/ask", "post", (400, 401, 405, 413, 422, 503)),
    ("/api/sources", "get", (401, 405, 503)),
    ("/api/sources/{source}", "get", (401, 404, 405, 503)),
    ("/healthz", "get", (405, 503)),
])
def test_openapi_documents_errors_as_error_json(spec, path, method, statuses):
    for status in statuses:
        assert _json_schema(spec, path, method, status) == {"$ref": "#/components/schemas/Error"}
    assert spec["components"]["schemas"]["Error"]["properties"] == {
        "error": {"type": "string", "title": "Error", "description": "what is wrong, in one line"}}
    text = json.dumps(spec)
    assert '"detail"' not in text and "HTTPValidationError" not in text


def test_source_text_is_documented_as_text(spec):
    ok = spec["paths"]["/api/sources/{source}"]["get"]["responses"]["200"]
    assert ok["content"] == {"text/plain": {"schema": {"type": "string"}}}


def test_answer_json_has_the_documented_fields(live, spec, seed_qa):
    body = httpx.post(live[0] + "/api/ask", json={"question": QUESTION}).json()
    schemas = spec["components"]["schemas"]
    expected = seed_qa.ask(QUESTION).to_json()
    assert set(body) == set(schemas["AnswerJSON"]["properties"]) == set(expected)
    assert set(body["citations"][0]) == set(schemas["Citation"]["properties"]) == set(expected["citations"][0])
    assert set(body["passages"][0]) == set(schemas["Passage"]["properties"]) == set(expected["passages"][0])
    assert body["answer"] == expected["answer"] and body["citations"] == expected["citations"]
    assert [p["chunk_id"] for p in body["passages"]] == [p["chunk_id"] for p in expected["passages"]]


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/api/ask", {"question": " "}, 400),
    ("GET", "/api/sources/nope.txt", None, 404),
    ("GET", "/api/nope", None, 404),
    ("GET", "/api/ask", None, 405),
    ("POST", "/api/ask", {"question": "hi", "history": [["x" * 1000, "y"]] * 1000}, 413),
    ("POST", "/api/ask", {"question": "hi", "k": "5"}, 422),
])
def test_errors_are_the_documented_json(live, method, path, body, status):
    response = httpx.request(method, live[0] + path, json=body)
    assert response.status_code == status
    error = response.json()
    assert list(error) == ["error"] and isinstance(error["error"], str) and error["error"]


def test_docs_page_and_its_assets_are_served_locally(live):
    page = httpx.get(live[0] + "/docs")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "cdn" not in page.text and "https://" not in page.text
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css"),
                        ("favicon.png", "image/png")):
        assert f"/docs/static/{asset}" in page.text
        response = httpx.get(f"{live[0]}/docs/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert httpx.get(live[0] + "/redoc").status_code == 404  # ReDoc would load from a CDN: not offered


@pytest.mark.browser
def test_docs_render_the_routes_offline(live):
    """Chromium with every request off the server refused: Swagger UI still lists the routes."""
    from playwright.sync_api import sync_playwright

    url = live[0]
    elsewhere, problems = [], []
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def offline(route):
            if urlparse(route.request.url).netloc == urlparse(url).netloc:
                return route.continue_()
            elsewhere.append(route.request.url)
            return route.abort()

        page.route("**/*", offline)
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(url + "/docs")
        page.locator(".opblock").first.wait_for(timeout=30_000)
        paths = set(page.locator(".opblock-summary-path").all_inner_texts())
        assert {"/api/ask", "/api/sources", "/api/sources/{source}", "/healthz"} <= {p.strip() for p in paths}
        page.locator(".opblock-summary", has_text="/api/ask").first.click()
        page.get_by_text("request body over 1 MB").first.wait_for(timeout=10_000)
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "docs.png"), full_page=True)
        browser.close()
    assert not elsewhere, f"the docs page asked for {elsewhere}"
    assert not problems, f"console errors (a CSP violation?): {problems}"


# -- gradio_client: the typed /ask endpoint ----------------------------------------------------------------

@pytest.fixture(scope="module")
def client(live):
    from gradio_client import Client

    return Client(live[0] + "/", verbose=False)


def test_ask_endpoint_is_named_and_typed(client):
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/ask"]
    params = {p["parameter_name"]: p for p in endpoint["parameters"]}
    assert list(params) == ["question", "history", "k", "mode", "collection"]
    assert params["question"]["type"] == {"type": "string"} and not params["question"]["parameter_has_default"]
    assert params["history"]["type"] == {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}
    assert params["k"]["type"] == {"type": "integer"} and params["k"]["parameter_default"] == 5
    assert params["mode"]["type"] == {"enum": ["hybrid", "dense", "lexical"]}
    (returns,) = endpoint["returns"]
    assert set(returns["type"]["properties"]) >= {"answer", "abstained", "citations", "passages", "search_query"}


def test_ask_endpoint_returns_the_answer_json(client, live):
    answer = client.predict(question=QUESTION, api_name="/ask")
    rest = httpx.post(live[0] + "/api/ask", json={"question": QUESTION}).json()
    assert isinstance(answer, dict) and {**answer, "timings_ms": {}} == {**rest, "timings_ms": {}}
    assert "GHB [1]" in answer["answer"] and answer["citations"][0]["text"].endswith("drug GHB.")


def test_ask_endpoint_uses_the_history_and_does_not_escape(client):
    answer = client.predict(question="How old was he?", history=[[QUESTION, "GHB"]], k=3, mode="hybrid",
                            api_name="/ask")
    assert answer["search_query"] == "How old was Daniel Whitworth?" and "21" in answer["answer"]
    assert len(answer["passages"]) == 3
    abstained = client.predict(question="What was the weather in Barking?", api_name="/ask")
    assert abstained["abstained"] and "don't" in abstained["answer"] and "&#" not in abstained["answer"]


@pytest.mark.parametrize("kwargs, message", [
    ({"question": ""}, "empty"),
    ({"question": "hi", "history": [["a"]]}, "history"),
    ({"question": "hi", "history": [["a", "b", "c"]]}, "history"),
    ({"question": "hi", "history": [[1, "a"]]}, "history"),
    ({"question": "hi", "history": [["q", "a"]] * 21}, "at most 20"),
    ({"question": "hi", "history": [["q" * 4001, "a"]]}, "4000"),
    ({"question": "hi", "history": "x"}, "history"),
    ({"question": "hi", "k": "5"}, "k"),
    ({"question": "hi", "k": 0}, "k"),
    ({"question": "hi", "mode": "magic"}, "mode"),
    ({"question": 42}, "question"),
])
def test_ask_endpoint_refuses_bad_input_with_a_message(client, kwargs, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(**kwargs, api_name="/ask")


def test_ask_endpoint_never_takes_a_file(live):
    url, gradio_tmp = live
    file = {"path": str(HOSTNAME_FILE), "meta": {"_type": "gradio.FileData"}}
    for data in ([file, [], 5, "hybrid"], ["hi", [[file, "a"]], 5, "hybrid"], ["hi", [], 5, {"url": "http://x"}]):
        response = httpx.post(url + "/gradio_api/call/ask", json={"data": data})
        assert response.status_code == 422 and response.json() == {"error": "the chat takes text only"}
    assert not [p for p in gradio_tmp.rglob("*") if p.is_file()], "Gradio copied a client-named file"
