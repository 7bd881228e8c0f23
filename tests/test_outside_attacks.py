"""A black-box attack on `qa serve` from outside (hostile round 7): uploads in parallel through every Gradio
route, PDFs that cost minutes per kilobyte, an uploaded PDF with a blank page, Gradio's run history calling
the Hugging Face Hub with the host's token, slow bodies, the waiting-uploads cap raced, the token cookie,
deeply nested JSON, and what the host leaks. Each test fails without its fix."""

import asyncio
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, SEEDS
from .test_server import start_server, stop_server

pytestmark = pytest.mark.slow


def slow_pdf(pages: int, operators: int) -> bytes:
    """A few kilobytes of PDF whose one compressed content stream of `operators` text operators is shared by
    every page: the parser reads it again for each page (seconds per page)."""
    stream = zlib.compress(b"BT (a) Tj ET " * operators, 9)
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    font = b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] " + font + b" /Contents 3 0 R >>"] * pages
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def text_and_blank_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 10, "The tide gauge at Rye harbour was installed in 1932. It is read twice a day.")
    pdf.add_page()  # no text layer: a scanned page, as far as the loader can tell
    return bytes(pdf.output())


class FakeHub(http.server.ThreadingHTTPServer):
    """Stands in for huggingface.co (HF_ENDPOINT): records every request that reaches it."""

    def __init__(self):
        self.seen: list[str] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                hub.seen.append(f"{self.command} {self.path} {self.headers.get('authorization')}")
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = do_HEAD = _any

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacked")
    hub = FakeHub()
    gradio_tmp = root / "gradio-tmp"
    gradio_tmp.mkdir()
    proc, url = start_server(SEEDS, root / "index", env_extra={
        "GRADIO_TEMP_DIR": str(gradio_tmp), "HF_TOKEN": "hf_host_secret_token", "GRADIO_RUN_HISTORY": None,
        "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}", "QA_MAX_UPLOADS_TOTAL_MB": "1",
        "QA_MAX_PARSE_SECONDS": "3"})
    yield url, root / "index", hub, proc
    stop_server(proc)
    hub.shutdown()


def _saved(url: str, name: str, content: bytes) -> str:
    response = httpx.post(url + "/gradio_api/upload", files={"files": (name, content)})
    assert response.status_code == 200, response.text
    return response.json()[0]


def _file(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def _call_upload(url: str, path: str, collection: str, route: str = "call") -> str:
    """The upload event through one of Gradio's routes: everything its event stream says (/call/), or the
    reply (/run/ and /api/, which answer with the generator's first output and leave the rest running)."""
    started = httpx.post(f"{url}/gradio_api/{route}/upload_documents", json={"data": [[_file(path)], collection]},
                         timeout=120)
    if route != "call" or started.status_code != 200:
        return started.text
    return httpx.get(f"{url}/gradio_api/call/upload_documents/{started.json()['event_id']}", timeout=120).text


def _uploads_bytes(index_dir: Path) -> int:
    root = index_dir / "collections"
    return sum(p.stat().st_size for c in root.iterdir() if (c / "files").is_dir()
               for p in c.rglob("*") if p.is_file()) if root.is_dir() else 0


def test_a_pdf_that_takes_too_long_to_read_is_skipped_and_stalls_nobody(attacked):
    """A 10 KB PDF held the upload worker for minutes (and a second user's upload waited). Parsing runs in a
    child process with a time limit (QA_MAX_PARSE_SECONDS=3 here): the file is skipped with the reason."""
    url = attacked[0]
    path = _saved(url, "slow.pdf", slow_pdf(pages=8, operators=200_000))
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(_call_upload, url, path, "slowpdf")
        time.sleep(1)
        asked = time.monotonic()
        answer = httpx.post(url + "/api/ask", json={"question": "Which drug killed Daniel Whitworth?"}, timeout=30)
        ask_seconds = time.monotonic() - asked
        said = upload.result()
    assert answer.status_code == 200 and ask_seconds < 5  # the parse is not in the server's process
    assert "slow.pdf" in said and "took over 3 s" in said, said
    assert time.monotonic() - started < 30
    assert not (attacked[1] / "collections" / "slowpdf" / "files" / "slow.pdf").exists()


def test_parallel_uploads_through_the_direct_route_keep_to_the_quota(attacked):
    """Six parallel /run/ calls under a 1 MB quota left 5 collections holding 5 MB: the check and the writes
    were not under one lock. Uploads now run one at a time, whatever route calls them."""
    url, index_dir = attacked[0], attacked[1]
    paths = [_saved(url, f"part{i}.txt", (f"Part {i} of the ledger. " * 20_000).encode()[:300_000])
             for i in range(6)]
    routes = ["run", "api", "call", "run", "api", "call"]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: _call_upload(url, paths[i], f"ledger{i}", routes[i]), range(6)))
    last, steady, deadline = None, 0, time.monotonic() + 120
    while steady < 5 and time.monotonic() < deadline:  # /run/ and /api/ return early: wait until all settle
        time.sleep(1)
        now = (_uploads_bytes(index_dir), httpx.get(url + "/api/collections").text)
        steady, last = (steady + 1 if now == last else 0), now
    accepted = [c for c in httpx.get(url + "/api/collections").json()["collections"]
                if c["name"].startswith("ledger") and c["documents"]]
    assert len(accepted) <= 2, accepted
    assert _uploads_bytes(index_dir) <= 2_000_000  # the quota, and the last accepted upload's own index


def test_run_history_and_monitoring_are_closed_and_nothing_reaches_the_hub(attacked):
    """With HF_TOKEN set, Gradio's run-history routes (and a chat call naming a history bucket) sent the
    host's token to the Hub, and /monitoring/summary showed endpoint statistics to anyone."""
    url, _, hub, _ = attacked
    for method, path, body in (("GET", "/gradio_api/run-history/buckets", None),
                               ("GET", "/gradio_api/run-history/records?bucket=me/b", None),
                               ("POST", "/gradio_api/run-history/connect", {"bucket": "me/b", "token": None}),
                               ("GET", "/gradio_api/runs", None), ("GET", "/monitoring/summary", None),
                               ("GET", "/gradio_api/monitoring/summary", None)):
        response = httpx.request(method, url + path, json=body)
        assert response.status_code in (403, 404), (path, response.status_code, response.text)
        assert list(response.json()) == ["error"]
    started = httpx.post(url + "/gradio_api/call/chat", json={"data": ["Which drug killed Daniel Whitworth?"]},
                         headers={"x-gradio-history-bucket": "attacker/bucket"})
    if started.status_code == 200:
        httpx.get(f"{url}/gradio_api/call/chat/{started.json()['event_id']}", timeout=60)
    time.sleep(1)  # history is written in the background
    assert hub.seen == []
    config = httpx.get(url + "/config").json()
    assert not config.get("run_history", False)


def test_json_nested_past_any_sense_is_a_json_422_without_a_traceback(attacked):
    url, proc = attacked[0], attacked[3]
    deep = "[" * 50_000 + "]" * 50_000
    for path in ("/gradio_api/queue/join", "/gradio_api/run/chat", "/gradio_api/call/ask"):
        response = httpx.post(url + path, content=deep, headers={"content-type": "application/json"})
        assert response.status_code == 422 and "nested too deeply" in response.json()["error"], path
        assert response.headers["x-content-type-options"] == "nosniff"
    nested = {"data": ["hi"], "fn_index": 0, "session_hash": "abcdefgh", "x": json.loads("[" * 40 + "]" * 40)}
    assert httpx.post(url + "/gradio_api/queue/join", json=nested).status_code == 422


def _raw(url: str, request: bytes, then: bytes = b"") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)))
    conn.sendall(request)
    if then:
        conn.sendall(then)
    return conn


def test_a_body_that_trickles_in_is_cut_off_at_the_deadline():
    """400 connections sending a body a byte every 5 s stayed open past 35 s and starved the server. The
    guard now gives a body BODY_DEADLINE_S in all (an upload a minimum rate), then answers 408."""
    from ui import security

    received = []

    async def app(scope, receive, send):
        received.append(await receive())

    async def trickle():
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"{", "more_body": True}

    sent = []

    async def send(message):
        sent.append(message)

    async def run():
        guard = security.RequestGuard(app)
        scope = {"type": "http", "method": "POST", "path": "/api/ask", "headers": [(b"content-length", b"100000")]}
        await guard(scope, trickle, send)

    old = security.BODY_DEADLINE_S
    security.BODY_DEADLINE_S = 0.5
    try:
        started = time.monotonic()
        asyncio.run(run())
    finally:
        security.BODY_DEADLINE_S = old
    assert time.monotonic() - started < 3 and not received
    assert sent[0]["status"] == 408 and "did not arrive within" in json.loads(sent[1]["body"])["error"]


def test_the_waiting_uploads_cap_holds_under_parallel_uploads():
    """20 simultaneous 1.9 MB uploads against an 8 MB cap left 26.6 MB waiting: each passed the check before
    any had landed. Uploads in flight are now reserved under a lock, and the sweep runs off the event loop."""
    from ui import security

    landed, sweep_threads = [], []

    def sweep():
        sweep_threads.append(threading.current_thread().name)
        return sum(landed), len(landed)

    async def app(scope, receive, send):
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await asyncio.sleep(0.05)
        landed.append(size)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    uploads = security.FileUploads(set(), set(), lambda p: False, 2_000_000, sweep, max_waiting_bytes=8_000_000,
                                   max_waiting_files=100)
    guard = security.RequestGuard(app, uploads=uploads)
    statuses = []

    async def one():
        body = b"x" * 1_900_000
        scope = {"type": "http", "method": "POST", "path": security.UPLOAD_ROUTE,
                 "headers": [(b"content-length", str(len(body)).encode())]}
        sent_once = []

        async def receive():
            if sent_once:
                return {"type": "http.disconnect"}
            sent_once.append(1)
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await guard(scope, receive, send)

    async def all_at_once():
        await asyncio.gather(*(one() for _ in range(20)))

    asyncio.run(all_at_once())
    assert sum(landed) <= 8_000_000 and statuses.count(200) == 4 and statuses.count(429) == 16
    assert uploads.reserved == 0  # every reservation released
    assert threading.main_thread().name not in sweep_threads  # the folder walk never blocks the event loop
    landed[:] = [1] * 100
    asyncio.run(one())
    assert statuses[-1] == 429  # too many files waiting, however small


def test_an_uploaded_pdf_with_a_blank_page_is_kept(tmp_path):
    """The loader's note on a page without a text layer was taken for a skipped file: the upload deleted the
    PDF it had just indexed, said '0 documents added', and the next upload dropped it from the index."""
    from index.config import load_settings
    from index.uploads import add_files, list_documents

    settings = load_settings(corpus=SEEDS, index_dir=tmp_path / "index")
    added, report = add_files(settings, "tides", [("gauge.pdf", text_and_blank_pdf())])
    assert added.saved == ["gauge.pdf"] and any("no text layer" in s.reason for s in report.skipped)
    folder = tmp_path / "index" / "collections" / "tides" / "files"
    assert (folder / "gauge.pdf").is_file()
    add_files(settings, "tides", [("more.txt", b"The harbour master reads the gauge at dawn.\n")])
    assert [s for s, _ in list_documents(settings, "tides")] == ["gauge.pdf", "more.txt"]
    assert (folder / "gauge.pdf").is_file()


def test_the_token_cookie_is_a_session_never_the_token(seed_settings):
    """Browsers send a host's cookies to every port: another web app on the machine got qa_token=<the secret>.
    The cookie now holds a random session value of this server; the token is checked before any body is read."""
    token = "s3cret-token-for-cookies"
    proc, url = start_server(SEEDS, seed_settings.index_dir, env_extra={"QA_TOKEN": token})
    try:
        opened = httpx.get(f"{url}/?token={token}", follow_redirects=False)
        cookie = opened.headers["set-cookie"]
        assert opened.status_code == 303 and token not in cookie and "HttpOnly" in cookie
        session = cookie.split(";")[0].split("=", 1)[1]
        assert len(session) >= 32
        assert httpx.get(url + "/api/sources", cookies={"qa_token": session}).status_code == 200
        assert httpx.get(url + "/api/sources", cookies={"qa_token": token}).status_code == 401
        # Another app's cookies on this host (JSON, a space) no longer hide the session (a 401 after login).
        others = {"cookie": f'prefs={{"theme": "dark"}}; qa_token={session}; greeting=hello world'}
        assert httpx.get(url + "/api/sources", headers=others).status_code == 200
        # Without the token nothing of a body is read: 1 MB bodies were held in memory before the 401.
        conn = _raw(url, b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 900000\r\n\r\n")
        conn.settimeout(5)
        try:
            assert conn.recv(200).startswith(b"HTTP/1.1 401")  # at once, with 900,000 bytes still unsent
        finally:
            conn.close()
    finally:
        stop_server(proc)


@pytest.mark.parametrize("token", ["tök-en-with-umlaut", "semi;colon-token", "with space token", "quote\"token"])
def test_a_token_clients_cannot_send_is_refused_at_start(token, tmp_path):
    env = {"QA_TOKEN": token, "QA_INDEX_DIR": str(tmp_path / "index"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "qa", "serve", "--port", "1"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "QA_TOKEN must be" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_collections_are_listed_from_a_cache_until_one_changes(tmp_path, monkeypatch):
    """With 1,000 upload collections every page load re-read each store (1 s); a listing is now read again
    only for the collections whose folder or store changed."""
    from index import collections
    from index.config import load_settings
    from index.uploads import add_files

    settings = load_settings(corpus=SEEDS, index_dir=tmp_path / "index")
    for name in ("one", "two"):
        add_files(settings, name, [(f"{name}.txt", f"The {name} document says hello.\n".encode())])
    first = {c.name: c.documents for c in collections.list_collections(settings)}
    reads = []
    real = collections.collection_info
    monkeypatch.setattr(collections, "collection_info", lambda s, n: reads.append(n) or real(s, n))
    assert {c.name: c.documents for c in collections.list_collections(settings)} == first and reads == []
    add_files(settings, "two", [("more.txt", b"Another document for two.\n")])
    listed = {c.name: c.documents for c in collections.list_collections(settings)}
    assert reads == ["two"] and listed["two"] == 2 and listed["one"] == 1


def test_a_parse_whose_caller_gave_up_is_stopped(tmp_path):
    """A client that left did not stop its upload's parse (112 s of CPU for nobody). The upload sets
    index.isolate.cancelled when its page goes away; the parse in the child process is then killed."""
    from index import isolate
    from index.load import read_document

    path = tmp_path / "slow.pdf"
    path.write_bytes(slow_pdf(pages=8, operators=200_000))
    gone = threading.Event()
    threading.Timer(1.0, gone.set).start()
    token = isolate.cancelled.set(gone.is_set)
    started = time.monotonic()
    try:
        with pytest.raises(isolate.Cancelled):
            read_document(path, "slow.pdf")
    finally:
        isolate.cancelled.reset(token)
    assert time.monotonic() - started < 3
    document, _ = read_document(_write(tmp_path / "ok.pdf"), "ok.pdf")
    assert "tide gauge" in document.text  # a new parser process serves the next file


def _write(path: Path) -> Path:
    path.write_bytes(text_and_blank_pdf())
    return path


def test_an_unchanged_pdf_is_never_parsed_again(tmp_path, monkeypatch):
    """Every change to a collection read each of its PDFs again: a 50-byte upload waited 57 s behind one."""
    from index import load
    from index.build import build_index
    from index.config import load_settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write(corpus / "gauge.pdf")
    settings = load_settings(corpus=corpus, index_dir=tmp_path / "index")
    build_index(settings)
    parsed = []
    real = load.parse_isolated
    monkeypatch.setattr(load, "parse_isolated", lambda suffix, data: parsed.append(suffix) or real(suffix, data))
    (corpus / "note.txt").write_text("The harbour master reads the gauge at dawn.\n", encoding="utf-8")
    report = build_index(settings)
    assert parsed == [] and report.unchanged == ["gauge.pdf"] and report.added == ["note.txt"]
    (corpus / "other.pdf").write_bytes(slow_pdf(pages=1, operators=10))
    build_index(settings)
    assert parsed == [".pdf"]  # only the new one


def test_a_call_to_an_endpoint_that_does_not_exist_is_a_404(attacked):
    """POST /gradio_api/call/v2/<unknown> was a 500 with a KeyError traceback in the server log."""
    url, proc = attacked[0], attacked[3]
    for route in ("call/v2", "call", "run", "api"):
        response = httpx.post(f"{url}/gradio_api/{route}/nope", json={"data": ["x"]})
        assert response.status_code == 404 and "no such endpoint: nope" in response.json()["error"], route
    assert httpx.post(f"{url}/gradio_api/call/ask", json={"data": ["x"]}).status_code != 404
    assert httpx.post(f"{url}/gradio_api/run/nope").status_code == 404  # no body at all
    # The page's own queue-less events (an example's click) post a fn_index to /run/predict: that must work
    # (a 404 there left the question box empty when a "Try" example was clicked).
    assert httpx.post(f"{url}/gradio_api/run/predict", json={"data": ["x"]}).status_code == 404
    info = httpx.get(f"{url}/config").json()
    example_click = next(d["id"] for d in info["dependencies"] if d.get("queue") is False)
    clicked = httpx.post(f"{url}/gradio_api/run/predict", json={"data": [0], "fn_index": example_click,
                                                                "session_hash": "abcdefgh"})
    assert clicked.status_code != 404, clicked.text
    # A function index Gradio does not have (hostile round 8: 500s with tracebacks on queue/join)
    for fn_index in (9999, -1, "0", 1.5):
        for route in ("queue/join",):
            response = httpx.post(f"{url}/gradio_api/{route}", json={"data": ["x"], "fn_index": fn_index,
                                                                     "session_hash": "abcdefgh"})
            assert response.status_code == 404 and "fn_index" in response.json()["error"], (route, fn_index)
    # Gradio's reload-mode stream, never used here, stayed open forever for anyone who asked
    assert httpx.get(f"{url}/gradio_api/dev/reload", timeout=5).status_code == 404


def test_numbers_gradio_cannot_take_are_refused_before_it_sees_them(attacked):
    """A slider value of 1e309 (inf) or NaN reached Gradio's input check, which logged a traceback."""
    url = attacked[0]
    for number in ("1e309", "-1e999", "NaN", "Infinity"):
        body = '{"data": ["Which drug killed Daniel Whitworth?", [], %s, "hybrid"]}' % number
        response = httpx.post(url + "/gradio_api/call/ask", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422 and list(response.json()) == ["error"], number


def test_the_upload_quota_is_checked_and_written_under_one_lock(tmp_path, monkeypatch):
    """Parallel uploads each checked the quota before any had written: under a 1 MB quota six of them left
    5 MB. add_files now runs one call at a time, so each check sees what the others wrote."""
    from index import uploads
    from index.config import load_settings

    monkeypatch.setattr(uploads, "MAX_UPLOADS_TOTAL_BYTES", 1_000_000)
    settings = load_settings(corpus=SEEDS, index_dir=tmp_path / "index")
    barrier = threading.Barrier(6)

    def upload(i: int):
        barrier.wait()  # all six at once
        added, _ = uploads.add_files(settings, f"ledger{i}", [(f"part{i}.txt", bytes([65 + i]) * 300_000)],
                                     index=False)
        return added.saved

    with ThreadPoolExecutor(6) as pool:
        saved = list(pool.map(upload, range(6)))
    assert sum(bool(s) for s in saved) == 3  # 0.3 + 0.3 + 0.3 MB fit under 1 MB; a fourth would not
    assert uploads.uploads_in_use(settings) <= 1_000_000


def test_an_upload_of_many_slow_pdfs_has_one_time_budget(tmp_path, monkeypatch):
    """A zip of many small slow PDFs got the time limit once per file and held the upload lock for hours
    (hostile round 8). The upload's PDFs share one budget; past it the rest are skipped, not parsed."""
    import io
    import zipfile

    from index import isolate
    from index.config import load_settings
    from index.uploads import add_files

    monkeypatch.setattr(isolate, "MAX_PARSE_SECONDS", 2.0)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        for i in range(4):
            archive.writestr(f"slow{i}.pdf", slow_pdf(pages=8, operators=200_000 + i))
    settings = load_settings(corpus=SEEDS, index_dir=tmp_path / "index")
    started = time.monotonic()
    added, report = add_files(settings, "slow", [("slow.zip", packed.getvalue()),
                                                 ("note.txt", b"The gauge is read twice a day.\n")])
    elapsed = time.monotonic() - started
    reasons = {s.path: s.reason for s in report.skipped}
    assert elapsed < 6, elapsed  # one budget of 2 s, not 2 s for each of the four
    assert sorted(reasons) == [f"slow{i}.pdf" for i in range(4)], reasons
    assert sum("in all" in reason for reason in reasons.values()) >= 3, reasons
    assert report.documents >= 1 and "note.txt" in added.saved  # the rest of the upload is indexed


def test_a_document_saved_before_is_never_deleted_by_a_later_upload(tmp_path, monkeypatch):
    """Files the loader skips are removed only if this upload brought them: an earlier document that is
    skipped this time (its reading time spent) stays on disk for the next run."""
    from index import isolate, uploads
    from index.config import load_settings

    settings = load_settings(corpus=SEEDS, index_dir=tmp_path / "index")
    uploads.add_files(settings, "tides", [("gauge.pdf", text_and_blank_pdf())])
    folder = uploads.check_upload_collection(settings, "tides")
    monkeypatch.setattr(isolate, "MAX_PARSE_SECONDS", 0.001)  # nothing can be read now
    monkeypatch.setattr(isolate.ParseCache, "get", lambda self, digest: None)  # as after an indexer update
    uploads.add_files(settings, "tides", [("late.pdf", text_and_blank_pdf()[:-10] + b"%%EOF\n")])
    assert (folder / "gauge.pdf").is_file()


def test_held_uploads_hold_what_they_sent_not_what_they_declared():
    """Uploads declaring 200 MB each and trickling at the minimum rate reserved the whole waiting-uploads cap:
    every other upload was a 429 for hours (hostile round 8). An upload now holds the bytes it has sent."""
    from ui import security

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    uploads = security.FileUploads(set(), set(), lambda p: False, 2_000_000, lambda: (0, 0),
                                   max_waiting_bytes=8_000_000, max_waiting_files=100)
    guard = security.RequestGuard(app, uploads=uploads)

    async def upload(declared: int, chunks: list[bytes], hold: asyncio.Event | None = None) -> list[int]:
        statuses, queue = [], list(chunks)
        scope = {"type": "http", "method": "POST", "path": security.UPLOAD_ROUTE,
                 "headers": [(b"content-length", str(declared).encode())]}

        async def receive():
            if queue:
                return {"type": "http.request", "body": queue.pop(0), "more_body": True}
            if hold is not None:
                await hold.wait()
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await guard(scope, receive, send)
        return statuses

    async def scenario():
        hold = asyncio.Event()
        held = [asyncio.create_task(upload(2_000_000, [b"x" * 10_000], hold)) for _ in range(4)]
        await asyncio.sleep(0.2)  # four uploads under way, 8 MB declared, 40 kB sent
        victim = await asyncio.wait_for(upload(1_000_000, [b"y" * 1_000_000]), 5)
        hold.set()
        return victim, await asyncio.gather(*held)

    victim, held = asyncio.run(scenario())
    assert victim == [200]
    assert held == [[200]] * 4 and uploads.reserved == 0
