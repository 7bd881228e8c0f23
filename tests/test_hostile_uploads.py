"""A hostile client against a live `qa serve`: uploads, collections and saved conversations, attacked from
outside over HTTP. The holes it found are closed and tested in the first section; the attacks that were
refused from the start follow, so they stay refused."""

import io
import os
import random
import stat
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from .conftest import SEEDS
from .test_server import start_server, stop_server

pytestmark = pytest.mark.slow
HOSTNAME = Path("/etc/hostname")
DOC = b"# Walrus\n\nThe walrus at Camber is called Gustav. He arrived in 2019.\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-uploads")
    gradio_tmp = root / "gradio-tmp"
    gradio_tmp.mkdir()
    proc, url = start_server(SEEDS, root / "index", env_extra={
        "GRADIO_TEMP_DIR": str(gradio_tmp), "QA_MAX_UPLOAD_MB": "1", "QA_MAX_UPLOAD_REQUEST_MB": "2"})
    yield url, root / "index", gradio_tmp, root
    stop_server(proc)


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-token")
    proc, url = start_server(SEEDS, root / "index", env_extra={"QA_TOKEN": "secret",
                                                               "GRADIO_TEMP_DIR": str(root / "gradio-tmp")})
    yield url
    stop_server(proc)


def _saved_path(url: str, content: bytes, name: str) -> str:
    saved = httpx.post(url + "/gradio_api/upload", files={"files": (name, content)})
    assert saved.status_code == 200, saved.text
    return saved.json()[0]


def _file(url: str, path: str, orig_name: str | None = None) -> dict:
    """FileData as the browser sends it after the upload route saved the file."""
    return {"path": path, "url": f"{url}/gradio_api/file={path}", "orig_name": orig_name or Path(path).name,
            "meta": {"_type": "gradio.FileData"}}


def _upload_event(url: str, paths: list[str], collection: str, orig_name: str | None = None) -> str:
    started = httpx.post(f"{url}/gradio_api/call/upload_documents",
                         json={"data": [[_file(url, p, orig_name) for p in paths], collection]})
    assert started.status_code == 200, started.text
    return httpx.get(f"{url}/gradio_api/call/upload_documents/{started.json()['event_id']}", timeout=120).text


def _upload(url: str, name: str, content: bytes, collection: str, orig_name: str | None = None) -> str:
    return _upload_event(url, [_saved_path(url, content, name)], collection, orig_name)


def _zip(entries) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buffer.getvalue()


def _symlink_entry(name: str, target: bytes):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _documents(url: str, collection: str) -> list[str]:
    response = httpx.get(f"{url}/api/collections/{collection}/documents")
    return [d["source"] for d in response.json()["documents"]] if response.status_code == 200 else []


# --- holes found by the hostile test, now closed ---------------------------------------------------------------------------------


def test_upload_route_field_without_a_filename_is_not_a_500(live):
    body = (b'--xx\r\nContent-Disposition: form-data; name="files"\r\n\r\nabc\r\n--xx--\r\n')
    response = httpx.post(live[0] + "/gradio_api/upload", content=body,
                          headers={"content-type": "multipart/form-data; boundary=xx"})
    assert response.status_code != 500 and response.status_code < 500


def _docx_bomb(paragraph: str, filler: str, count: int) -> bytes:
    """A valid .docx of ~100 KB whose word/document.xml unpacks to count * len(filler) bytes."""
    import docx

    document = docx.Document()
    document.add_paragraph("PLACEHOLDER")
    buffer = io.BytesIO()
    document.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    xml = source.read("word/document.xml").decode()
    start = xml.index("<w:p>") if "<w:p>" in xml else xml.index("<w:p ")
    end = xml.index("</w:p>", start) + len("</w:p>")
    xml = xml[:start] + f"<w:p><w:r><w:t>{paragraph}</w:t></w:r></w:p>" + filler * count + xml[end:]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for item in source.infolist():
            z.writestr(item.filename, xml if item.filename == "word/document.xml" else source.read(item.filename))
    return out.getvalue()


def test_a_docx_decompression_bomb_is_refused(live):
    url = live[0]
    bomb = _docx_bomb("The zebra crossing is new.", '<w:bookmarkStart w:id="0" w:name="x"/>', 600_000)
    assert len(bomb) < 200_000
    said = _upload(url, "bomb.docx", bomb, "docxbomb")
    assert "skipped bomb.docx" in said and "bomb.docx" not in _documents(url, "docxbomb")


def test_small_zips_cannot_fill_the_disk(live):
    url, index_dir = live[0], live[1]
    sent, before = 0, _tree_bytes(index_dir)
    for n in range(3):
        bomb = _zip([(f"z{n}-{i}.txt", f"zebra{n}{i} " * 90_000) for i in range(2)])  # ~1.9 MB unpacked
        sent += len(bomb)
        said = _upload(url, f"bomb{n}.zip", bomb, f"fill{n}")
        assert "Done" in said
    written = _tree_bytes(index_dir) - before
    assert written <= 100 * sent, f"{sent} bytes sent, {written} bytes written"


def test_gradio_api_refuses_other_local_origins(live):
    url = live[0]
    other = "http://localhost:9999"
    preflight = httpx.options(url + "/gradio_api/queue/join", headers={
        "Origin": other, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.headers.get("access-control-allow-origin") != other
    call = httpx.post(url + "/gradio_api/call/chat", headers={"Origin": other},
                      json={"data": ["Which drug killed Daniel Whitworth?", 5, "hybrid"]})
    assert call.status_code in (400, 403) or call.headers.get("access-control-allow-origin") != other


def test_a_cross_site_form_cannot_write_into_the_upload_folder(live):
    url, gradio_tmp = live[0], live[2]
    marker = b"planted by a cross-site form"
    response = httpx.post(url + "/gradio_api/upload", headers={"Origin": "http://evil.example"},
                          files={"files": ("planted.md", marker)})
    assert response.status_code in (400, 403)
    assert not any(marker in p.read_bytes() for p in gradio_tmp.rglob("*") if p.is_file())


def test_refused_long_questions_are_not_kept_whole(live):
    from gradio_client import Client

    client = Client(live[0] + "/", verbose=False)
    reply = None
    for i in range(5):
        reply = client.predict(f"why{i} " * 150_000, 5, "hybrid", api_name="/chat")
    assert len(repr(reply)) < 1_000_000


def test_bidi_override_names_are_refused(live):
    url = live[0]
    said = _upload(url, "\u202egnp.md", DOC, "bidi")
    assert "\u202egnp.md" not in _documents(url, "bidi") and "skipped" in said


# --- refused, and should stay refused --------------------------------------------------------------------------


def test_multipart_names_keep_only_their_basename(live):
    url, index_dir = live[0], live[1]
    for name in ("../../../pwn1.md", "/tmp/pwn2.md", "..\\..\\pwn3.md", "C:\\Windows\\pwn4.md"):
        _upload(url, name, DOC, "names")
    files = index_dir / "collections" / "names" / "files"
    assert sorted(p.name for p in files.iterdir()) == ["pwn1.md", "pwn2.md", "pwn4.md"]  # "....pwn3.md" is hidden
    assert not any((index_dir / p).exists() for p in ("pwn1.md", "collections/pwn1.md", "../pwn1.md"))
    assert not Path("/tmp/pwn2.md").exists()
    assert httpx.post(url + "/gradio_api/upload", files={"files": ("..", DOC)}).status_code == 400


def test_orig_name_from_the_client_is_ignored(live):
    url, index_dir = live[0], live[1]
    path = _saved_path(url, DOC, "plain.md")
    said = _upload_event(url, [path], "orig", orig_name="../../../../escaped.md")
    assert "Done: 1 document added to orig (plain.md)" in said
    assert [p.name for p in (index_dir / "collections" / "orig" / "files").iterdir()] == ["plain.md"]


def test_zip_entries_cannot_escape_or_link(live):
    url, index_dir, _, root = live
    secret = HOSTNAME.read_text().strip()
    bomb = _zip([("../../../../escaped.md", DOC), ("/tmp/abs-escaped.md", DOC), ("..\\..\\win.md", DOC),
                 ("C:\\drive.md", DOC), ("a/../up.md", DOC), (".git/config.md", DOC),
                 _symlink_entry("link.md", str(HOSTNAME).encode()),
                 _symlink_entry("rel.md", b"../../../../../../etc/hostname"),
                 ("d/" * 20 + "deep.md", DOC), ("ok.md", DOC)])
    said = _upload(url, "hostile.zip", bomb, "zipped")
    for reason in ("&#x27;..&#x27; in the zip path", "absolute path in the zip", "a link or special file",
                   "hidden files", "more than 8 folders deep"):
        assert reason in said
    assert _documents(url, "zipped") == ["ok.md"]
    files = index_dir / "collections" / "zipped" / "files"
    assert [p.name for p in files.rglob("*")] == ["ok.md"]
    assert not any(p.is_symlink() for p in files.rglob("*"))
    assert not Path("/tmp/abs-escaped.md").exists() and not list(root.rglob("escaped.md"))
    assert secret not in httpx.get(url + "/api/sources/ok.md", params={"collection": "zipped"}).text


def test_zip_limits_hold(live):
    url = live[0]
    many = _zip([(f"e{i}.md", b"x") for i in range(1001)])
    assert "more than 1000 files in the zip" in _upload(url, "many.zip", many, "limits")
    lying = bytearray(_zip([("lie.txt", b"a " * 500_000)]))
    central = lying.find(b"PK\x01\x02")
    lying[22:26] = (10).to_bytes(4, "little")  # the local header and the central directory both say 10 bytes
    lying[central + 24:central + 28] = (10).to_bytes(4, "little")
    assert "cannot be unpacked" in _upload(url, "lie.zip", bytes(lying), "limits")
    words = [os.urandom(4).hex() for _ in range(500)]  # text that compresses like text (about 3:1), not a bomb
    pick = random.Random(7).choice
    # 3.5 MB unpacked, over the 2 MB request. Each file opens with a byte that is not UTF-8, so the one taken before
    # the cap is skipped by the loader, not indexed: embedding its 1.2 MB of text took this test 110 s.
    big = _zip([(f"b{i}.txt", b"\xff" + " ".join(pick(words) for _ in range(130_000)).encode()) for i in range(3)])
    result = _upload(url, "big.zip", big, "limits")
    assert "the zip unpacks to more than 2 MB" in result and "b1.txt" in result


def test_collections_do_not_leak_into_each_other(live):
    url = live[0]
    _upload(url, "walrus.md", DOC, "alpha")
    _upload(url, "other.md", b"# Other\n\nThe heron at Rye is called Hilda.\n", "beta")
    answer = httpx.post(url + "/api/ask", json={"question": "What is the walrus at Camber called?",
                                                "collection": "beta"}, timeout=30).json()
    assert "Gustav" not in answer["answer"]
    assert all(p["source"] != "walrus.md" for p in answer["passages"])
    assert httpx.get(url + "/api/sources/walrus.md", params={"collection": "beta"}).status_code == 404
    assert httpx.get(url + "/view/walrus.md", params={"collection": "beta"}).status_code == 404
    assert httpx.get(url + "/api/sources/walrus.md").status_code == 404  # not in default either
    for bad in ("../alpha", "alpha\n", "ALPHA", "a" * 41):
        assert httpx.post(url + "/api/ask", json={"question": "walrus?", "collection": bad}).status_code == 422


@pytest.mark.parametrize("path", [
    "/api/sources/..%2F..%2Findex.sqlite", "/api/sources/%2Fetc%2Fhostname", "/view/..%2F..%2F..%2Fetc%2Fhostname",
    "/api/sources/..%2Fconversations.sqlite", "/api/sources/files%2F..%2F..%2Findex.sqlite"])
def test_source_routes_serve_only_indexed_sources(live, path):
    url = live[0]
    _upload(url, "walrus.md", DOC, "alpha")
    response = httpx.get(url + path, params={"collection": "alpha"})
    assert response.status_code == 404 and "error" in response.json()


def test_document_delete_cannot_reach_outside(live):
    url, index_dir = live[0], live[1]
    _upload(url, "keep.md", DOC, "keep")
    sqlite = index_dir / "collections" / "keep" / "index.sqlite"
    for name in ("..%2Findex.sqlite", "..%2F..%2Findex.sqlite", "%2Fetc%2Fhostname", "keep.md%00", "KEEP.md",
                 "..%2Fchroma"):
        response = httpx.delete(f"{url}/api/collections/keep/documents/{name}")
        assert response.status_code == 404, name
    assert sqlite.exists() and HOSTNAME.exists() and _documents(url, "keep") == ["keep.md"]
    refused = httpx.delete(f"{url}/api/collections/default/documents/000_66c9290ad1937cce.txt")
    assert refused.status_code == 400 and (SEEDS / "000_66c9290ad1937cce.txt").exists()
    assert "add files to that folder" in _upload(url, "new.md", DOC, "default")
    assert not (SEEDS / "new.md").exists()


def test_the_upload_event_takes_no_path_outside_the_upload_folder(live):
    url, index_dir = live[0], live[1]
    real = _saved_path(url, DOC, "real.md")
    for path in (str(HOSTNAME), str(index_dir / "index.sqlite"), str(index_dir / "conversations.sqlite"),
                 str(Path(real).parent), str(Path(real).parent.parent), real + "\x00.md",
                 "file://" + real, real.upper()):
        started = httpx.post(f"{url}/gradio_api/call/upload_documents",
                             json={"data": [[_file(url, path)], "outside"]})
        assert started.status_code == 422, path
    assert httpx.get(f"{url}/api/collections/outside/documents").status_code == 404


def _fn_index(url: str, trigger: str, elem_id: str, output: str = "qa-chat") -> int:
    """The event that `trigger` on `elem_id` runs and that updates `output` (the chat by default)."""
    config = httpx.get(url + "/config").json()
    ids = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    return next(i for i, dep in enumerate(config["dependencies"])
                if any(t[0] == ids[elem_id] and t[1] == trigger for t in dep["targets"])
                and ids[output] in dep["outputs"])


def _queue(url: str, fn_index: int, data: list, session: str) -> dict:
    """One event through Gradio's queue in a given session, as the browser runs it; the completed message."""
    import json

    joined = httpx.post(url + "/gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                                                              "session_hash": session})
    assert joined.status_code == 200, joined.text
    with httpx.stream("GET", url + "/gradio_api/queue/data", params={"session_hash": session}, timeout=60) as s:
        buffer = ""
        for chunk in s.iter_text():
            buffer += chunk
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)  # split on \n only: names may hold U+2028
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
    raise AssertionError("no process_completed")


def test_hostile_names_are_escaped_in_the_chat_and_the_markdown_export(live):
    url = live[0]
    name = "a`b <img src=x onerror=alert(12)> `c.md"
    text = b"# <img src=x onerror=alert(1)>\n\nThe beaver <script>alert(2)</script> called Bartholomew builds dams " \
           b"on the river Brede [x](javascript:alert(3)).\n"
    _upload(url, "names.zip", _zip([(name, text)]), "escape")
    session = "hostile" + os.urandom(4).hex()
    config = httpx.get(url + "/config").json()
    picker = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "qa-collection")
    load = next(i for i, dep in enumerate(config["dependencies"])
                if dep["targets"] and dep["targets"][0][1] == "load" and picker in dep["outputs"])
    _queue(url, load, [], session)  # the page's load event fills the collection picker's choices
    assert _queue(url, _fn_index(url, "input", "qa-collection"), ["escape"], session)["success"]
    reply = _queue(url, _fn_index(url, "click", "qa-ask"),
                   ["Who builds dams on the river Brede?", None, 5, "hybrid"], session)
    shown = repr(reply["output"]["data"])
    assert "Bartholomew" in shown and "<img src=x" not in shown and "<script>" not in shown
    assert 'href="javascript:' not in shown
    saved = next(c for c in httpx.get(url + "/api/conversations").json()["conversations"]
                 if c["collection"] == "escape")
    markdown = httpx.get(f"{url}/api/conversations/{saved['id']}/markdown").text
    assert "Bartholomew" in markdown
    assert "<img" not in markdown.replace("\\<img", "") and "<script>" not in markdown.replace("\\<script\\>", "")
    assert "](javascript:" not in markdown.replace("\\](javascript:", "")
    view = httpx.get(f"{url}/view/{name}", params={"collection": "escape"})
    assert view.status_code == 200 and "<img src=x" not in view.text and "<script>alert" not in view.text


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost.", "127.1", "0.0.0.0"])
def test_odd_host_headers_are_refused_on_the_new_routes(live, host):
    url = live[0]
    for method, path in (("GET", "/api/conversations"), ("GET", "/api/collections"),
                         ("GET", "/api/collections/default/documents"), ("POST", "/gradio_api/upload"),
                         ("DELETE", "/api/conversations/x")):
        kwargs = {"files": {"files": ("h.md", DOC)}} if method == "POST" else {}
        response = httpx.request(method, url + path, headers={"Host": host}, **kwargs)
        assert response.status_code == 400, (host, path)


def test_cross_origin_rest_deletes_get_no_preflight(live):
    url = live[0]
    for path in ("/api/conversations/x", "/api/collections/alpha/documents/walrus.md"):
        preflight = httpx.options(url + path, headers={"Origin": "http://evil.example",
                                                       "Access-Control-Request-Method": "DELETE"})
        assert "access-control-allow-origin" not in preflight.headers
    form = httpx.post(url + "/api/ask", headers={"Origin": "http://evil.example", "content-type": "text/plain"},
                      content=b'{"question": "Which drug killed Daniel Whitworth?"}')
    assert form.status_code == 403  # another site's page: refused before anything reads the body


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/collections"), ("GET", "/api/collections/default/documents"), ("GET", "/api/conversations"),
    ("GET", "/api/conversations/x"), ("GET", "/api/conversations/x/markdown"), ("DELETE", "/api/conversations/x"),
    ("DELETE", "/api/collections/default/documents/x"), ("POST", "/gradio_api/upload"),
    ("POST", "/gradio_api/call/upload_documents"), ("POST", "/gradio_api/queue/join"),
    ("GET", "/api/sources?collection=default"), ("GET", "/%61pi/conversations"), ("GET", "/api/./conversations"),
    ("OPTIONS", "/api/conversations"), ("HEAD", "/api/conversations")])
def test_the_token_guards_the_new_routes(locked, method, path):
    for headers in ({}, {"Authorization": "Bearer secretx"}, {"Authorization": "secret"},
                    {"Cookie": "qa_token=secre"}):
        response = httpx.request(method, locked + path, headers=headers)
        assert response.status_code in (401, 403), (path, headers)
    for scheme in ("Bearer", "bearer", "BEARER"):  # RFC 9110: the scheme is case-insensitive, the token is not
        assert httpx.get(locked + "/api/conversations", headers={"Authorization": f"{scheme} secret"}).status_code == 200


def test_the_upload_sweep_never_touches_other_apps_files_and_old_private_folders_go(tmp_path):
    # Hostile-tester finding: with Gradio's default upload folder (/tmp/gradio, shared by every Gradio app),
    # one upload request deleted another app's two-hour-old file. The server now uploads into a folder of its own.
    shared = tmp_path / "gradio" / "otherapp"
    shared.mkdir(parents=True)
    other = shared / "cached_output.png"
    other.write_bytes(b"\x89PNG other app")
    two_hours_ago = time.time() - 7200
    os.utime(other, (two_hours_ago, two_hours_ago))
    # A server killed before its cleanup left its private folder; one of a running server is kept.
    ended = subprocess.Popen(["true"])
    ended.wait()
    left_behind = tmp_path / f"grounded-qa-uploads-{ended.pid}-x1"
    in_use = tmp_path / f"grounded-qa-uploads-{os.getpid()}-x2"
    for folder in (left_behind, in_use):
        folder.mkdir()
        (folder / "pending.md").write_bytes(DOC)
    # Gradio's default folder is $TMPDIR/gradio; an empty GRADIO_TEMP_DIR is unset for Gradio
    proc, url = start_server(SEEDS, tmp_path / "index", env_extra={"TMPDIR": str(tmp_path), "GRADIO_TEMP_DIR": ""})
    try:
        saved = httpx.post(url + "/gradio_api/upload", files={"files": ("a.md", DOC)})
        assert saved.status_code == 200
        assert not saved.json()[0].startswith(str(tmp_path / "gradio"))
        assert list(tmp_path.glob(f"grounded-qa-uploads-{proc.pid}-*"))
    finally:
        stop_server(proc)  # SIGTERM, as a service manager stops it: its own folder goes too
    assert other.read_bytes() == b"\x89PNG other app"
    assert not left_behind.exists() and (in_use / "pending.md").read_bytes() == DOC
    assert not list(tmp_path.glob(f"grounded-qa-uploads-{proc.pid}-*"))
