"""Documents from the browser, against a live `qa serve`: upload through Gradio's own route and event, ask with
a citation from the upload, list and remove over REST; and a hostile client that tries to make the upload
event read other files."""

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from .conftest import SEEDS
from .test_server import OUTPUT, _browser, start_server, stop_server

pytestmark = pytest.mark.slow
BELL = "# Bells\n\nThe church bell at Winchelsea was cast in 1781 by Thomas Janaway. It weighs nine hundredweight.\n"
HOSTNAME = Path("/etc/hostname")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("uploads-server")
    gradio_tmp = root / "gradio-tmp"
    gradio_tmp.mkdir()
    proc, url = start_server(SEEDS, root / "index", env_extra={
        "GRADIO_TEMP_DIR": str(gradio_tmp), "QA_MAX_UPLOAD_MB": "1", "QA_MAX_UPLOAD_REQUEST_MB": "2"})
    yield url, root / "index", gradio_tmp, root
    stop_server(proc)


def _client(url):
    from gradio_client import Client

    return Client(url + "/", verbose=False)


def _upload(url, paths, collection):
    from gradio_client import handle_file

    progress, listing = _client(url).predict(files=[handle_file(str(p)) for p in paths], collection=collection,
                                             api_name="/upload_documents")
    return progress, listing


def _call(url: str, api: str, body: dict) -> httpx.Response | str:
    """A raw Gradio call; the refusal, or everything its event stream says."""
    started = httpx.post(f"{url}/gradio_api/call/{api}", json=body)
    if started.status_code != 200:
        return started
    return httpx.get(f"{url}/gradio_api/call/{api}/{started.json()['event_id']}", timeout=60).text


def test_upload_ask_list_and_remove(live, tmp_path):
    url, index_dir, gradio_tmp, _ = live
    bell = tmp_path / "bell.md"
    bell.write_text(BELL, encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("The ferry to Camber is called Marigold. It leaves from the east pier at nine.\n", encoding="utf-8")
    progress, listing = _upload(url, [bell, notes], "village")
    assert "Done: 2 documents added to village" in progress and "chunks embedded: 2 / 2" in progress
    assert 'href="/view/bell.md?collection=village"' in listing
    assert (index_dir / "collections" / "village" / "files" / "bell.md").read_text(encoding="utf-8") == BELL
    assert not [p for p in gradio_tmp.rglob("*") if p.name in ("bell.md", "notes.txt")]  # kept once, not twice

    answer = httpx.post(url + "/api/ask", json={"question": "Who cast the church bell at Winchelsea?",
                                                "collection": "village"}, timeout=30).json()
    assert "Thomas Janaway" in answer["answer"] and answer["citations"][0]["source"] == "bell.md"
    cited = answer["citations"][0]
    text = httpx.get(url + "/api/sources/bell.md", params={"collection": "village"}).text
    assert text[cited["start"]:cited["end"]] == cited["text"]
    listed = httpx.get(url + "/api/collections/village/documents").json()
    assert listed == {"collection": "village", "documents": [{"source": "bell.md", "chunks": 1},
                                                             {"source": "notes.txt", "chunks": 1}]}
    info = {c["name"]: c for c in httpx.get(url + "/api/collections").json()["collections"]}
    assert info["village"]["uploads"] and not info["default"]["uploads"]

    removed = httpx.delete(url + "/api/collections/village/documents/bell.md", timeout=60)
    assert removed.json() == {"removed": "bell.md", "documents": 1, "chunks": 1}
    assert [d["source"] for d in httpx.get(url + "/api/collections/village/documents").json()["documents"]] == \
        ["notes.txt"]
    again = httpx.post(url + "/api/ask", json={"question": "Who cast the church bell at Winchelsea?",
                                               "collection": "village"}, timeout=30).json()
    assert "Janaway" not in again["answer"] and all(c["source"] != "bell.md" for c in again["citations"])
    assert httpx.get(url + "/api/sources/bell.md", params={"collection": "village"}).status_code == 404


def test_a_reupload_replaces_and_loader_refusals_are_reported(live, tmp_path):
    url = live[0]
    hidden, bad = tmp_path / ".hidden.md", tmp_path / "latin1.txt"
    hidden.write_text("# Hidden\n\nText.\n", encoding="utf-8")
    bad.write_bytes("caf\u00e9".encode("latin-1"))
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Invalid file type"):  # Gradio checks the button's file_types too
        _upload(url, [exe], "refusals")
    progress, _ = _upload(url, [hidden, bad], "refusals")
    assert "hidden files" in progress
    assert "skipped latin1.txt: not UTF-8" in progress
    bell = tmp_path / "bell.md"
    bell.write_text(BELL, encoding="utf-8")
    _upload(url, [bell], "refusals")
    bell.write_text(BELL.replace("Thomas Janaway", "Ada Quist"), encoding="utf-8")
    _upload(url, [bell], "refusals")
    answer = httpx.post(url + "/api/ask", json={"question": "Who cast the church bell at Winchelsea?",
                                                "collection": "refusals"}, timeout=30).json()
    assert "Ada Quist" in answer["answer"]


def test_folder_collections_are_never_written(live, tmp_path):
    url = live[0]
    new = tmp_path / "new.md"
    new.write_text("# New\n\nA new document.\n", encoding="utf-8")
    progress, _ = _upload(url, [new], "default")
    assert "add files to that folder" in progress and not (SEEDS / "new.md").exists()
    refused = httpx.delete(url + "/api/collections/default/documents/000_66c9290ad1937cce.txt")
    assert refused.status_code == 400 and "add files to that folder" in refused.json()["error"]
    assert (SEEDS / "000_66c9290ad1937cce.txt").exists()
    listed = httpx.get(url + "/api/collections/default/documents").json()["documents"]
    assert len(listed) == 2 and all(d["chunks"] > 0 for d in listed)


@pytest.mark.parametrize("method, path, status", [
    ("DELETE", "/api/collections/village/documents/%2E%2E/%2E%2E/index.sqlite", 404),
    ("DELETE", "/api/collections/village/documents/nope.md", 404),
    ("GET", "/api/collections/nope/documents", 404),
    ("GET", "/api/collections/Bad%20Name/documents", 422),
    ("DELETE", "/api/collections/nope/documents/x.md", 404),
])
def test_document_routes_refuse_with_json_errors(live, method, path, status):
    response = httpx.request(method, live[0] + path)
    assert response.status_code == status and "error" in response.json()


def test_upload_limits_and_busy(live, tmp_path):
    url, index_dir, _, _ = live
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * 300_000)  # 1.5 MB: over the 1 MB a file this server allows
    response = httpx.post(url + "/gradio_api/upload", files={"files": ("big.txt", big.read_bytes())})
    assert response.status_code == 413
    many = [("files", (f"f{i}.txt", b"x" * 900_000)) for i in range(3)]  # 2.7 MB: over the request limit
    response = httpx.post(url + "/gradio_api/upload", files=many)
    assert response.status_code == 413 and "upload over 2 MB" in response.json()["error"]

    from index.build import index_lock

    small = tmp_path / "small.md"
    small.write_text("# Small\n\nA small document.\n", encoding="utf-8")
    started = time.monotonic()
    with index_lock(index_dir / "collections" / "busybox"):
        progress, _ = _upload(url, [small], "busybox")
    assert "being indexed right now" in progress and time.monotonic() - started < 30
    assert "pid" not in progress and str(index_dir) not in progress  # the host's process ids and paths stay there


def _saved_path(url: str, content: bytes, name: str = "a.md") -> str:
    saved = httpx.post(url + "/gradio_api/upload", files={"files": (name, content)})
    assert saved.status_code == 200
    return saved.json()[0]


def _file(path: str, **extra) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, **extra}


def test_the_upload_event_reads_only_what_the_upload_route_saved(live):
    url, index_dir, gradio_tmp, _ = live
    secret = HOSTNAME.read_text()
    os.symlink(HOSTNAME, gradio_tmp / "link.md")  # a link inside the upload folder, pointing out
    (gradio_tmp / "sub").mkdir(exist_ok=True)
    os.symlink(HOSTNAME, gradio_tmp / "sub" / "hostname.md")
    real = _saved_path(url, b"# Fine\n\nA fine document.\n")
    hostile = [
        _file(str(HOSTNAME)),
        _file(str(index_dir / "index.sqlite")),
        _file(str(gradio_tmp / "link.md")),
        _file(str(gradio_tmp / "sub" / "hostname.md")),
        _file(f"{gradio_tmp}/../../../../etc/hostname"),
        _file("http://127.0.0.1:9/secret.md"),
        _file(real, url="http://evil.example/x.md"),
        _file(real, url=f"http://evil.example/gradio_api/file={real}"),
        _file(real, is_stream=True),
        {"path": real, "meta": {"_type": "gradio.FileData"}, "orig_name": {"path": str(HOSTNAME)}},
        {"path": real},  # no meta: not what the upload route returns
    ]
    for item in hostile:
        said = _call(url, "upload_documents", {"data": [[item], "stolen"]})
        assert isinstance(said, httpx.Response) and said.status_code == 422, item
        assert secret not in said.text
    # A good file beside a bad one, a file in the name field, fn_index pointing the chat at the upload event
    # (and the upload event's name with another fn_index): all refused.
    for api, body in [("upload_documents", {"data": [[_file(real), _file(str(HOSTNAME))], "stolen"]}),
                      ("upload_documents", {"data": [[_file(real)], _file(str(HOSTNAME))]}),
                      ("upload_documents", {"data": [[_file(real)], "stolen"], "fn_index": 0}),
                      ("chat", {"data": [[_file(str(HOSTNAME))], "stolen"]})]:
        said = _call(url, api, body)
        assert isinstance(said, httpx.Response) and said.status_code == 422, body
    joined = httpx.post(url + "/gradio_api/queue/join", json={"data": [[_file(str(HOSTNAME))], "stolen"],
                                                              "fn_index": 0, "session_hash": "x"})
    assert joined.status_code == 422
    assert httpx.get(url + "/api/collections/stolen/documents").status_code == 404
    assert not (index_dir / "collections" / "stolen").exists()
    copies = [p for p in gradio_tmp.rglob("*") if p.is_file() and not p.is_symlink()]
    assert all(secret not in p.read_text(errors="replace") for p in copies)
    # What the upload route saved is never served back as a raw file.
    assert httpx.get(f"{url}/gradio_api/file={real}").status_code == 403
    # The real file, sent as the browser sends it (with its own URL), is accepted.
    said = _call(url, "upload_documents", {"data": [[_file(real, url=f"{url}/gradio_api/file={real}",
                                                           orig_name="a.md")], "fine"]})
    assert isinstance(said, str) and "Done: 1 document added to fine" in said


@pytest.mark.browser
def test_browser_uploads_a_document_and_asks_about_it(live, tmp_path):
    from playwright.sync_api import sync_playwright

    url = live[0]
    bell = tmp_path / "bells.md"
    bell.write_text(BELL, encoding="utf-8")
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url + "/")
        page.click("#qa-documents")
        page.fill("#qa-upload-target input", "parish")
        page.keyboard.press("Enter")
        page.wait_for_selector("#qa-upload-where :text('The first upload makes')")
        with page.expect_file_chooser() as chooser:
            page.click("#qa-upload")
        chooser.value.set_files(str(bell))
        page.wait_for_selector("#qa-upload-status :text('Done: 1 document added to parish')", timeout=60_000)
        assert "chunks embedded: 1 / 1" in page.inner_text("#qa-upload-status")
        assert "bells.md" in page.inner_text("#qa-doc-list")
        page.screenshot(path=str(OUTPUT / "uploads.png"), full_page=True)
        page.click("#qa-collection input")
        page.get_by_role("option", name="parish").click()
        page.wait_for_selector("#qa-title:has-text('collection parish')")  # the switch is done (it clears the box)
        page.fill("#qa-input textarea", "Who cast the church bell at Winchelsea?")
        page.click("#qa-ask")
        card = page.locator("#qa-cards .qa-card").first
        try:
            card.wait_for(timeout=30_000)
        finally:
            page.screenshot(path=str(OUTPUT / "uploads-asked.png"), full_page=True)
        assert "bells.md" in card.inner_text() and "Thomas Janaway" in card.inner_text()
        browser.close()
    assert json.loads(httpx.get(url + "/api/collections/parish/documents").text)["documents"][0]["source"] == \
        "bells.md"


def test_uploads_never_indexed_are_swept_and_cannot_fill_the_disk(live):
    """Posting files to the upload route without the upload event keeps them only 10 minutes, and only up to four
    requests' worth (QA_MAX_UPLOAD_REQUEST_MB=2 here: 8 MB) waits at a time."""
    import os
    import time

    url, gradio_tmp = live[0], live[2]

    def age_everything_waiting():
        hour_ago = time.time() - 3700
        for path in gradio_tmp.rglob("*"):
            if path.is_file() and not path.is_symlink():
                os.utime(path, (hour_ago, hour_ago))

    age_everything_waiting()  # what earlier tests left: swept by the first request below

    def body(n: int):  # distinct contents: Gradio keeps identical files once
        return [("files", (f"f{i}.txt", f"{n} {i} ".encode() + b"x" * 900_000)) for i in range(2)]

    statuses = [httpx.post(url + "/gradio_api/upload", files=body(n)).status_code for n in range(6)]
    assert statuses == [200] * 4 + [429] * 2  # a fifth 1.8 MB request would pass the 8 MB cap: refused before it
    refused = httpx.post(url + "/gradio_api/upload", files=body(6))
    assert "waiting to be indexed" in refused.json()["error"]
    age_everything_waiting()
    assert httpx.post(url + "/gradio_api/upload", files=body(7)).status_code == 200
    waiting = [p for p in gradio_tmp.rglob("f*.txt") if p.is_file()]
    assert len(waiting) == 2 and all(p.read_bytes().startswith(b"7 ") for p in waiting)


@pytest.mark.browser
def test_browser_deletes_an_upload_collection_after_asking(tmp_path):
    # Issue 24: the browser could make upload collections but not delete one.
    from playwright.sync_api import sync_playwright

    from index.config import load_settings
    from index.uploads import add_files

    index_dir = tmp_path / "index"
    add_files(load_settings(corpus=SEEDS, index_dir=index_dir), "scratch",
              [("note.txt", b"The scratch note says the ferry leaves at nine.")])
    proc, url = start_server(SEEDS, index_dir)
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            asked = []
            page.on("dialog", lambda dialog: (asked.append(dialog.message),
                                              dialog.dismiss() if len(asked) == 1 else dialog.accept()))
            page.goto(url + "/")
            page.click("#qa-documents")
            page.click("#qa-upload-target input")
            page.get_by_role("option", name="scratch").click()
            page.wait_for_selector("#qa-doc-list :text('note.txt')")
            page.click("#qa-collection-delete")  # dismissed: kept
            page.wait_for_timeout(1500)
            assert "scratch" in [c["name"] for c in httpx.get(url + "/api/collections").json()["collections"]]
            page.click("#qa-collection-delete")  # accepted
            page.wait_for_selector("#qa-upload-status :text('Deleted the collection scratch')", timeout=30_000)
            assert "cannot be undone" in asked[0] and len(asked) == 2
            assert [c["name"] for c in httpx.get(url + "/api/collections").json()["collections"]] == ["default"]
            browser.close()
    finally:
        stop_server(proc)
