"""A hostile client against a live `qa serve`: file reads through Gradio, DNS rebinding, oversized and
mistyped requests, missing headers, the optional token."""

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .conftest import SEEDS
from .test_server import start_server, stop_server

pytestmark = pytest.mark.slow
HOSTNAME_FILE = Path("/etc/hostname")


@pytest.fixture(scope="module")
def hostile(seed_settings, tmp_path_factory):
    """A server with its own Gradio temp folder, so the test can see what Gradio copied into it."""
    gradio_tmp = tmp_path_factory.mktemp("gradio-tmp")
    proc, url = start_server(SEEDS, seed_settings.index_dir, env_extra={"GRADIO_TEMP_DIR": str(gradio_tmp)})
    yield url, gradio_tmp
    stop_server(proc)


def _gradio_call(url: str, data: list) -> str:
    """POST a call to the chat's Gradio endpoint and return everything the event stream says."""
    started = httpx.post(url + "/gradio_api/call/chat", json={"data": data})
    if started.status_code != 200:
        return started.text
    event = started.json()["event_id"]
    return httpx.get(f"{url}/gradio_api/call/chat/{event}", timeout=60).text


@pytest.mark.parametrize("history_message", [
    {"role": "user", "content": [{"type": "file", "file": {"path": str(HOSTNAME_FILE),
                                                           "meta": {"_type": "gradio.FileData"}}}]},
    {"role": "user", "content": {"path": str(HOSTNAME_FILE), "meta": {"_type": "gradio.FileData"}}},
])
def test_the_chat_never_copies_a_client_named_file(hostile, history_message):
    url, gradio_tmp = hostile
    secret = HOSTNAME_FILE.read_text().strip()
    for data in (["hello", [history_message], 5, "hybrid"], ["hello", 5, "hybrid"],
                 [{"path": str(HOSTNAME_FILE), "meta": {"_type": "gradio.FileData"}}, 5, "hybrid"]):
        said = _gradio_call(url, data)
        assert str(HOSTNAME_FILE) not in said and "gradio_api/file=" not in said
    assert not [p for p in gradio_tmp.rglob("*") if p.is_file()], "Gradio copied a client-named file"
    for path in (f"/gradio_api/file={HOSTNAME_FILE}", "/gradio_api/file=/etc/passwd",
                 f"/gradio_api/file={gradio_tmp}/x", "/file=/etc/passwd"):
        response = httpx.get(url + path)
        assert response.status_code in (403, 404) and "root:" not in response.text
        assert secret not in response.text or secret in ("localhost",)


def test_the_upload_route_saves_but_never_serves_back(hostile):
    """Open (size-limited) for the Documents panel; what it saves is read only by the upload event
    (tests/test_uploads_server.py), never served as a raw file."""
    upload = httpx.post(hostile[0] + "/gradio_api/upload", files={"files": ("a.txt", b"hello")})
    assert upload.status_code == 200
    assert httpx.get(f"{hostile[0]}/gradio_api/file={upload.json()[0]}").status_code == 403


def test_no_spelling_of_the_file_routes_serves_an_upload(hostile):
    """Gradio 6 serves files at /gradio_api/file=PATH and /gradio_api/file/PATH, relative to its working folder
    too, and proxies URLs: every spelling stays closed, the refusal one line of JSON with the headers."""
    url = hostile[0]
    saved = Path(httpx.post(url + "/gradio_api/upload", files={"files": ("page.html", b"<b>hi</b>")}).json()[0])
    relative = "README.md"  # relative to the server's working folder (httpx would resolve a "../" path itself)
    for path in (f"/gradio_api/file/{saved}", f"/gradio_api/file={relative}", f"/gradio_api/file/{relative}",
                 f"/file/{saved}", "/gradio_api/proxy=http://127.0.0.1/x", f"/gradio_api/file={saved}"):
        response = httpx.get(url + path)
        assert response.status_code == 403, path
        assert "<b>hi</b>" not in response.text and "file transfer is disabled" in response.json()["error"]
        assert response.headers["x-content-type-options"] == "nosniff"
    with httpx.stream("GET", url + "/gradio_api/upload_progress?upload_id=x", timeout=5) as progress:
        assert progress.status_code != 403  # the upload button's progress events carry no file


def test_a_second_host_or_origin_header_or_a_foreign_forwarded_host_is_refused(hostile):
    url = hostile[0]
    port = url.rsplit(":", 1)[1]
    import socket

    with socket.create_connection(("127.0.0.1", int(port))) as raw:  # httpx refuses to send two Host headers
        raw.sendall(f"GET /config HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1:{port}\r\n"
                    "Connection: close\r\n\r\n".encode())
        reply = b"".join(iter(lambda: raw.recv(65536), b"")).decode()
    assert reply.startswith("HTTP/1.1 400") and '"error"' in reply and "root" not in reply
    with httpx.Client() as client:
        forwarded = client.get(url + "/config", headers={"X-Forwarded-Host": "evil.example"})
        assert forwarded.status_code == 400 and "--allow-host" in forwarded.json()["error"]
        assert client.get(url + "/config", headers={"X-Forwarded-Host": f"localhost:{port}"}).status_code == 200
    with socket.create_connection(("127.0.0.1", int(port))) as raw:  # nor two Origin headers, whichever is read
        raw.sendall(f"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\n"
                    f"Origin: http://127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                    "Connection: close\r\n\r\n{}".encode())
        reply = b"".join(iter(lambda: raw.recv(65536), b"")).decode()
    assert reply.startswith("HTTP/1.1 403") and "cross-origin" in reply


@pytest.mark.parametrize("path, body", [
    ("/gradio_api/queue/join", {"data": ["hi"], "fn_index": 9999, "session_hash": "abcdefgh"}),
    ("/gradio_api/queue/join", {"data": ["hi"], "fn_index": -1, "session_hash": "abcdefgh"}),
    ("/gradio_api/run/nope", {"data": ["hi"]}),
    ("/gradio_api/call/v2/chat", {"data": ["hi"]}),
    ("/gradio_api/run/chat", {"data": ["q", 5, "hybrid"]}),  # too few inputs: Gradio's 500 listed its objects
])
def test_malformed_gradio_calls_get_one_json_line_not_a_traceback(hostile, path, body):
    response = httpx.post(hostile[0] + path, json=body)
    assert response.status_code >= 400 and response.headers["content-type"].startswith("application/json")
    assert "error" in response.json() and "\n" not in response.json()["error"]
    assert "Traceback" not in response.text and "File \"" not in response.text and " at 0x" not in response.text


@pytest.mark.parametrize("path", ["/gradio_api/queue/data", "/gradio_api/queue/join"])
def test_gradio_refusals_are_said_as_one_error_line_too(hostile, path):
    response = httpx.get(hostile[0] + path, timeout=10)
    assert 400 <= response.status_code < 500 and list(response.json()) == ["error"], response.text
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_chat_still_answers_with_text_only(hostile):
    said = _gradio_call(hostile[0], ["Which drug killed Daniel Whitworth?", 5, "hybrid"])
    assert "GHB <a class=" in said and ">[1]</a>" in said  # the marker links to its span


@pytest.mark.parametrize("host, status", [("evil.example", 400), ("localhost", 200), ("127.0.0.1", 200)])
def test_only_the_bound_host_names_are_answered(hostile, host, status):
    port = hostile[0].rsplit(":", 1)[1]
    response = httpx.get(hostile[0] + "/healthz", headers={"Host": f"{host}:{port}"})
    assert response.status_code == status
    if status == 400:  # one line of JSON that says what to do, like every other refusal
        assert "--allow-host" in response.json()["error"] and host in response.json()["error"]


def test_allow_host_adds_a_name(seed_settings):
    proc, url = start_server(SEEDS, seed_settings.index_dir, args=("--allow-host", "qa.example"))
    try:
        assert httpx.get(url + "/healthz", headers={"Host": "qa.example"}).status_code == 200
        assert httpx.get(url + "/healthz", headers={"Host": "evil.example"}).status_code == 400
    finally:
        stop_server(proc)


@pytest.mark.parametrize("body, status", [
    ({"question": "hi", "history": [["q", "a"]] * 988}, 422),
    ({"question": "hi", "history": [["q" * 5000, "a"]]}, 422),
    ({"question": "hi", "history": [[1, "a"]]}, 422),
    ({"question": "hi", "k": "5"}, 422),
    ({"question": "hi", "k": True}, 422),
    ({"question": "hi", "k": 5.5}, 422),
    ({"question": "hi", "extra": 1}, 422),
    ({"question": "hi", "history": [["x", "y"]] * 20}, 200),
])
def test_request_bounds_and_strict_types(hostile, body, status):
    response = httpx.post(hostile[0] + "/api/ask", json=body, timeout=30)
    assert response.status_code == status
    if status != 200:
        assert "error" in response.json()


def test_huge_bodies_are_refused_before_parsing(hostile):
    huge = json.dumps({"question": "hi", "history": [["x" * 1000, "y"]] * 5000}).encode()
    response = httpx.post(hostile[0] + "/api/ask", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "error" in response.json()

    def chunks():
        for _ in range(2000):
            yield b"x" * 1000

    streamed = httpx.post(hostile[0] + "/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_a_half_sent_request_is_dropped_at_the_deadline(hostile):
    """uvicorn alone waits forever for the rest of a request head: idle sockets could take every file
    descriptor (hostile tester: 20,000 left /healthz unanswered)."""
    import socket

    from ui.server import HEADER_DEADLINE_S

    port = int(hostile[0].rsplit(":", 1)[1])
    head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port)) as idle, socket.create_connection(("127.0.0.1", port)) as slow:
        idle.sendall(head)  # the blank line that ends the head never comes
        slow.sendall(head[:10])  # a slow client that does finish in time is answered
        time.sleep(1)
        slow.sendall(head[10:] + b"Connection: close\r\n\r\n")
        assert b"".join(iter(lambda: slow.recv(65536), b"")).startswith(b"HTTP/1.1 200")
        idle.settimeout(HEADER_DEADLINE_S + 20)
        started = time.monotonic()
        assert idle.recv(65536) == b""  # closed by the server, without a reply
        assert time.monotonic() - started < HEADER_DEADLINE_S + 5


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/ask", 405), ("DELETE", "/api/sources", 405), ("POST", "/healthz", 405),
    ("GET", "/api/nope", 404), ("POST", "/api/ask/extra", 404), ("GET", "/nope", 404),
    ("GET", "/api/sources/nope.txt", 404),
])
def test_wrong_methods_and_routes_get_json_errors(hostile, method, path, status):
    response = httpx.request(method, hostile[0] + path)
    assert response.status_code == status and "error" in response.json()


def test_invalid_utf8_body_is_a_json_error(hostile):
    response = httpx.post(hostile[0] + "/api/ask", content=b'{"question": "\xff\xfe"}',
                          headers={"content-type": "application/json"})
    assert response.status_code == 422 and "not valid JSON" in response.json()["error"]
    deep = httpx.post(hostile[0] + "/api/ask", content=b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                      headers={"content-type": "application/json"})
    assert deep.status_code == 422 and "not valid JSON" in deep.json()["error"]
    truncated = httpx.post(hostile[0] + "/api/ask", content=b'{"question": "Who',
                           headers={"content-type": "application/json"})
    assert truncated.status_code == 422 and truncated.json() == {
        "error": "the body is not valid JSON (at character 13)"}


@pytest.mark.parametrize("path", ["/", "/view/000_66c9290ad1937cce.txt", "/api/sources"])
def test_security_headers(hostile, path):
    headers = httpx.get(hostile[0] + path).headers
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_token_guards_rest_and_chat_when_set(seed_settings):
    proc, url = start_server(SEEDS, seed_settings.index_dir, args=("--host", "0.0.0.0"),
                             env_extra={"QA_TOKEN": "s3cret-token"})
    url = url.replace("0.0.0.0", "127.0.0.1")
    try:
        ask = {"question": "Which drug killed Daniel Whitworth?"}
        assert httpx.post(url + "/api/ask", json=ask).status_code == 401
        assert httpx.post(url + "/api/ask", json=ask, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url + "/").status_code == 401
        ok = httpx.post(url + "/api/ask", json=ask, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and "GHB" in ok.json()["answer"]
        with httpx.Client(base_url=url, follow_redirects=True) as browser:
            page = browser.get("/?token=s3cret-token")
            assert page.status_code == 200 and "token=" not in str(page.url)
            assert browser.get("/api/sources").status_code == 200  # the cookie carries on
        assert httpx.get(url + "/healthz").status_code == 200
        # The token link leads back to a page of this server, whatever the path holds.
        for path, location in (("//evil.example/x", "/evil.example/x"), ("/a%0d%0aSet-Cookie:%20x=1", None)):
            response = httpx.get(f"{url}{path}?token=s3cret-token&q=1", follow_redirects=False)
            assert response.status_code == 303 and "set-cookie: x" not in str(response.headers).lower()
            assert response.headers["location"].startswith("/") and not response.headers["location"].startswith("//")
            assert location is None or response.headers["location"] == location + "?q=1"
    finally:
        stop_server(proc)
        output = proc.stdout.read()
    assert "warning: --host 0.0.0.0 makes the chat reachable from other machines" in output


def test_followup_resolution_does_not_recurse_over_long_histories():
    from qa.followup import resolve_followup

    history = [("Which drug killed Daniel Whitworth?", "GHB")] * 5000
    assert resolve_followup("How old was he?", history) == "How old was Daniel Whitworth?"


def test_a_symlink_out_of_the_corpus_is_never_indexed_or_served(tmp_path):
    from .test_cli import run_qa

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("Ada Quist keeps the lighthouse at Rye.", encoding="utf-8")
    outside = tmp_path / "secret.txt"
    outside.write_text("The launch code is 0000.", encoding="utf-8")
    (corpus / "link.txt").symlink_to(outside)
    (corpus / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    (corpus / "inside.txt").symlink_to(corpus / "notes.txt")
    result = run_qa("index", str(corpus), index_dir=tmp_path / "idx")
    assert result.returncode == 0
    assert "warning: skipped link.txt: symbolic link to a file outside the corpus" in result.stderr
    listed = run_qa("source", "--list", index_dir=tmp_path / "idx").stdout.split()
    assert listed == ["inside.txt", "notes.txt"]
    assert run_qa("source", "link.txt", index_dir=tmp_path / "idx").returncode == 2
    answer = run_qa("ask", "What is the launch code?", "--json", index_dir=tmp_path / "idx",
                    env_extra={"QA_CORPUS": str(corpus)})
    assert "0000" not in answer.stdout


def test_terminal_output_is_safe_from_document_text(tmp_path):
    from .test_cli import run_qa

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ansi.txt").write_text("Ada Quist keeps the \x1b[2J\x1b[31mlighthouse\x1b[0m at Rye.\n\n"
                                     "The moat is \u202e10 metres\u202c deep.", encoding="utf-8")
    (corpus / "bad\nname.txt").write_text("Another file.", encoding="utf-8")
    indexed = run_qa("index", str(corpus), index_dir=tmp_path / "idx")
    assert "skipped bad\\nname.txt: file name contains control or invisible characters" in indexed.stderr
    assert run_qa("source", "--list", index_dir=tmp_path / "idx").stdout.splitlines() == ["ansi.txt"]
    answer = run_qa("ask", "Who keeps the lighthouse?", index_dir=tmp_path / "idx",
                    env_extra={"QA_CORPUS": str(corpus)})
    assert "Ada Quist" in answer.stdout and "\x1b" not in answer.stdout and "\\x1b[31m" in answer.stdout
    # A bidi override would show the cited sentence reversed: it is shown as an escape too.
    moat = run_qa("ask", "How deep is the moat?", index_dir=tmp_path / "idx", env_extra={"QA_CORPUS": str(corpus)})
    assert "\\u202e10 metres\\u202c" in moat.stdout and "\u202e" not in moat.stdout


def test_a_closed_pipe_is_not_a_traceback(seed_settings):
    import sys

    env = {**os.environ, "QA_INDEX_DIR": str(seed_settings.index_dir), "QA_CORPUS": str(SEEDS)}
    result = subprocess.run(f"{sys.executable} -m qa source 000_66c9290ad1937cce.txt | head -c 10",
                            shell=True, env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    result = subprocess.run(f"{sys.executable} -m qa ask 'Which drug killed Daniel Whitworth?' --json -k 50 "
                            "| head -1", shell=True, env=env, capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent)
    assert result.stdout.strip() == "{" and "Traceback" not in result.stderr


def test_only_the_answers_own_markers_become_links():
    from qa.types import Answer, Citation
    from ui.render import render_answer

    doc = 'It cost <img src=x> [1] pounds. <a href="//evil">[2]</a>'
    cited = doc[:31]
    citation = Citation(n=1, source="a b.txt", start=0, end=31, text=cited, chunk_id="c", score=1.0, line=1)
    answer = Answer(question="q", search_query="q", answer=f"{cited[:-1]} [1].", abstained=False,
                    citations=(citation,), passages=())
    html = render_answer(answer, lambda source: doc)
    assert html.count('class="qa-cite"') == 1 and "<img" not in html and 'href="//evil"' not in html
    assert 'href="/view/a%20b.txt?start=0&amp;end=31#span" target="_blank" rel="noopener">[1]</a>.' in html
    assert "&lt;img src=x&gt; [1] pounds <a" in html  # the document's own "[1]" stays text


def test_refusals_from_the_outer_layers_carry_the_security_headers(hostile):
    url = hostile[0]
    port = url.rsplit(":", 1)[1]
    for response in (httpx.get(url + "/healthz", headers={"Host": f"evil.example:{port}"}),
                     httpx.post(url + "/api/ask", content=b"x" * 2_000_000, headers={"content-type": "application/json"}),
                     httpx.post(url + "/gradio_api/call/chat", json={"data": [{"path": "/etc/hostname"}, 5, "hybrid"]})):
        assert response.status_code in (400, 413, 422)
        assert response.headers["x-content-type-options"] == "nosniff" and response.headers["x-frame-options"] == "DENY"


def test_names_and_arguments_that_are_not_utf8_are_one_line_errors(tmp_path):
    import sys

    from .test_cli import run_qa

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Ada Quist keeps the lighthouse at Rye.", encoding="utf-8")
    with open(os.path.join(os.fsencode(corpus), b"bad\xffname.txt"), "wb") as f:
        f.write(b"Another file.")
    indexed = run_qa("index", str(corpus), index_dir=tmp_path / "idx")
    assert indexed.returncode == 0 and "Traceback" not in indexed.stderr
    assert "file name is not valid UTF-8" in indexed.stderr
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "idx"), "QA_CORPUS": str(corpus), "HF_HUB_OFFLINE": "1"}
    for args in ([b"ask", b"\xff\xfe lighthouse"], [b"source", b"\xff.txt"]):
        result = subprocess.run([sys.executable.encode(), b"-m", b"qa", *args], env=env, capture_output=True,
                                cwd=Path(__file__).parent.parent)
        assert result.returncode == 2 and b"is not valid UTF-8" in result.stderr and b"Traceback" not in result.stderr
    (tmp_path / "a-file").write_text("x")
    blocked = run_qa("index", str(corpus), index_dir=tmp_path / "a-file" / "idx")
    assert blocked.returncode == 1 and "Cannot create the index folder" in blocked.stderr
    assert "Traceback" not in blocked.stderr
