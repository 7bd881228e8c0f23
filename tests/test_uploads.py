"""index/uploads.py on real files: names, zips (hostile ones too), limits, collections that are never written to,
indexing with progress, listing and removing documents."""

import io
import os
import stat
import zipfile

import pytest

from index.build import index_lock
from index.collections import collection_info, uploads_dir
from index.config import load_settings
from index.errors import IndexBusyError, NotFoundError, UsageError
from index.progress import IndexEvent
from index.uploads import (
    MAX_ZIP_ENTRIES,
    add_files,
    check_upload_collection,
    clean_name,
    list_documents,
    remove_document,
    unpack_zip,
)

from .conftest import SEEDS

FERRY = "# Ferries\n\nThe Rye ferry timetable was changed in March. The first boat to Camber leaves from the east pier.\n"
LIGHT = "The lighthouse at Dungeness was kept by Owen Pryce until 1989. He lived there with two cats.\n"


@pytest.fixture
def root(tmp_path):
    return load_settings(corpus=SEEDS, index_dir=tmp_path / "index")


def _zip(entries: list[tuple[str, bytes]], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buffer.getvalue()


def _pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


@pytest.mark.parametrize("given, expected", [
    ("notes.md", "notes.md"), ("../../x.md", "x.md"), ("C:\\Users\\me\\report.txt", "report.txt"),
    ("Cafe\u0301.md", "Caf\u00e9.md"), ("/etc/passwd.txt", "passwd.txt"),
])
def test_names_are_reduced_to_a_clean_basename(given, expected):
    assert clean_name(given) == expected


@pytest.mark.parametrize("given, reason", [
    (".hidden.md", "hidden files"), ("con\x1b[31m.md", "control or invisible"), ("a\nb.txt", "control or invisible"),
    ("x" * 300 + ".md", "longer than 200 bytes"), ("tool.exe", "unsupported file type '.exe'"),
    ("..", "not a file name"), ("dir/", "not a file name"), ("image.png", "unsupported file type"),
])
def test_names_the_loader_would_skip_are_refused_with_its_reason(given, reason):
    with pytest.raises(UsageError, match=reason):
        clean_name(given)


def test_hostile_zip_entries_are_refused_and_nothing_lands_outside(tmp_path, root):
    data = _zip([("../evil.md", b"escape"), ("/abs.md", b"absolute"), ("ok/inner.md", FERRY.encode()),
                 ("a/../../up.md", b"up"), (".git/config.txt", b"x"), ("__MACOSX/._x.md", b"x"),
                 ("C:/win.md", b"win")], links={"link.md": "/etc/hostname"})
    found, refused = unpack_zip(data, "docs.zip")
    assert [s for s, _ in found] == ["ok/inner.md"]
    reasons = {r.path: r.reason for r in refused}
    assert reasons["docs.zip:../evil.md"] == "'..' in the zip path"
    assert reasons["docs.zip:/abs.md"] == "absolute path in the zip"
    assert reasons["docs.zip:a/../../up.md"] == "'..' in the zip path"
    assert reasons["docs.zip:link.md"] == "a link or special file, not a regular file"
    assert reasons["docs.zip:C:/win.md"] == "absolute path in the zip"
    assert ".git/config.txt" not in str(found)
    added, report = add_files(root, "boats", [("docs.zip", data)])
    assert added.saved == ["ok/inner.md"] and report.documents == 1
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file() or p.is_symlink())
    assert [f for f in files if "/files/" in f] == ["index/collections/boats/files/ok/inner.md"]
    assert not (tmp_path / "evil.md").exists() and not (tmp_path / "index" / "up.md").exists()


def test_a_zip_bomb_stops_at_the_cap(monkeypatch):
    from index import uploads

    monkeypatch.setattr(uploads, "MAX_REQUEST_BYTES", 1_000_000)
    bomb = _zip([(f"part{i}.txt", b"a" * 400_000) for i in range(5)])
    assert len(bomb) < 20_000  # it compresses to almost nothing: refused by its ratio, entry by entry
    found, refused = unpack_zip(bomb, "bomb.zip")
    assert not found and all("compressed more than 50:1" in r.reason for r in refused)
    # Text that compresses like text stops at the unpacked cap.
    text = _zip([(f"part{i}.txt", os.urandom(200_000).hex().encode()) for i in range(5)])
    found, refused = unpack_zip(text, "text.zip")
    assert len(found) == 2 and "unpacks to more than 1 MB" in refused[-1].reason
    # A header that lies about the size is caught while reading.
    lying = bytearray(_zip([("big.txt", b"b" * 3_000_000)]))
    i = lying.index(b"PK\x01\x02")  # central directory: claim 10 bytes uncompressed
    lying[i + 24:i + 28] = (10).to_bytes(4, "little")
    j = lying.index(b"PK\x03\x04")
    lying[j + 22:j + 26] = (10).to_bytes(4, "little")
    found, refused = unpack_zip(bytes(lying), "lying.zip")
    assert not found and refused


def test_too_many_zip_entries_are_refused():
    found, refused = unpack_zip(_zip([(f"{i}.txt", b"x") for i in range(MAX_ZIP_ENTRIES + 1)]), "many.zip")
    assert not found and "more than 1000 files" in refused[0].reason
    assert unpack_zip(b"not a zip", "bad.zip") == ([], [refused[0].__class__("bad.zip", "not a valid zip file")])


def test_size_limits(root, monkeypatch):
    from index import uploads

    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 1000)
    monkeypatch.setattr(uploads, "MAX_REQUEST_BYTES", 1500)
    added, report = add_files(root, "sizes", [("big.txt", b"x" * 1001), ("a.txt", b"a " * 400),
                                              ("b.txt", b"b " * 400)], index=False)
    assert added.saved == ["a.txt"] and report is None
    assert {r.path: r.reason for r in added.refused} == {"big.txt": "larger than 0 MB",
                                                         "b.txt": "the upload is over 0 MB in all"}


def test_upload_index_list_replace_and_remove(root, tmp_path):
    events: list[IndexEvent] = []
    light = tmp_path / "light.txt"
    light.write_text(LIGHT, encoding="utf-8")
    files = [("ferry.md", FERRY.encode()), ("light.txt", light), ("report.pdf", _pdf("The harbour master is Ines "
             "Carvalho. She was appointed in 2019.")), ("latin1.txt", "caf\u00e9 cr\u00e8me".encode("latin-1")),
             ("empty.md", b"  \n")]
    added, report = add_files(root, "harbour", files, progress=events.append)
    assert added.saved == ["ferry.md", "light.txt", "report.pdf", "latin1.txt", "empty.md"] and not added.refused
    assert report.documents == 3 and {s.path for s in report.skipped} == {"latin1.txt", "empty.md"}
    folder = uploads_dir(root.index_dir, "harbour")
    assert sorted(p.name for p in folder.iterdir()) == ["ferry.md", "light.txt", "report.pdf"]  # skipped: removed
    stages = [e.stage for e in events]
    assert stages[0] == "reading" and "skipped" in stages and stages[-1] == "embedding"
    assert events[-1].done == events[-1].total > 0
    docs = dict(list_documents(root, "harbour"))
    assert set(docs) == {"ferry.md", "light.txt", "report.pdf"} and all(n >= 1 for n in docs.values())
    info = collection_info(root, "harbour")
    assert info.uploads and info.documents == 3

    from index.collections import collection_settings
    from qa.engine import QA

    qa = QA(collection_settings(root, "harbour"), build_if_missing=False)
    answer = qa.ask("Who is the harbour master?")
    assert "Ines Carvalho" in answer.answer and answer.citations[0].source == "report.pdf"

    # A re-upload replaces the document.
    added, report = add_files(root, "harbour", [("light.txt", LIGHT.replace("Owen Pryce", "Mair Jones").encode())])
    assert report.changed == ["light.txt"] and report.embedded >= 1
    assert "Mair Jones" in qa.ask("Who kept the lighthouse at Dungeness?").answer

    report = remove_document(root, "harbour", "report.pdf")
    assert report.removed == ["report.pdf"] and "report.pdf" not in dict(list_documents(root, "harbour"))
    assert not (folder / "report.pdf").exists()
    assert "Ines Carvalho" not in qa.ask("Who is the harbour master?").answer
    with pytest.raises(NotFoundError):
        remove_document(root, "harbour", "../../index.sqlite")
    with pytest.raises(NotFoundError):
        remove_document(root, "harbour", "report.pdf")
    for alias in ("ferry.md/", "./ferry.md", "ferry.md/."):  # only the source as listed removes it
        with pytest.raises(NotFoundError):
            remove_document(root, "harbour", alias)
    for source in ("ferry.md", "light.txt"):
        remove_document(root, "harbour", source)
    assert list_documents(root, "harbour") == []


def test_collections_made_from_a_folder_are_never_written(root, tmp_path):
    from index.build import build_index
    from index.collections import collection_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text(FERRY, encoding="utf-8")
    build_index(collection_settings(root, "boats", docs))
    for name in ("default", "boats"):
        with pytest.raises(UsageError, match="add files to that folder"):
            add_files(root, name, [("new.md", b"# New\n\nText here.\n")])
        with pytest.raises(UsageError, match="add files to that folder"):
            remove_document(root, name, "ferry.md")
    assert sorted(p.name for p in docs.iterdir()) == ["ferry.md"]
    assert not list(SEEDS.glob("new.md"))
    with pytest.raises(UsageError, match="collection names are"):
        check_upload_collection(root, "../x")


def test_an_upload_while_qa_index_runs_is_busy_at_once(root):
    from index.collections import collection_dir

    with index_lock(collection_dir(root.index_dir, "busy")), \
            pytest.raises(IndexBusyError, match="another qa index is running"):
        add_files(root, "busy", [("a.md", b"# A\n\nSome text.\n")])


def test_a_symlink_in_the_uploads_folder_is_never_followed(root, tmp_path):
    folder = uploads_dir(root.index_dir, "links")
    folder.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, folder / "sub")
    (folder / "a.md").symlink_to(tmp_path / "target.md")
    (tmp_path / "target.md").write_text("secret", encoding="utf-8")
    added, _ = add_files(root, "links", [("z.zip", _zip([("sub/x.md", b"# X\n\nText.\n"), ("a.md", b"# A\n\nnew\n")]))],
                         index=False)
    assert added.saved == [] and {r.path for r in added.refused} == {"sub/x.md", "a.md"}
    assert list(outside.iterdir()) == [] and (tmp_path / "target.md").read_text() == "secret"


@pytest.mark.parametrize("linked", ["files", "collection"])
def test_a_collection_folder_that_is_a_link_is_never_written_to_or_deleted_from(root, tmp_path, linked):
    # Hostile-tester finding: `files` linked to a user's folder let one DELETE remove a document there, and the
    # re-index that followed removed every file the loader skips (photos, spreadsheets) as "unsupported".
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (elsewhere / "holiday.jpg").write_bytes(os.urandom(200))
    folder = uploads_dir(root.index_dir, "linked")
    if linked == "files":
        folder.parent.mkdir(parents=True)
        folder.symlink_to(elsewhere)
    else:
        folder.parent.parent.mkdir(parents=True, exist_ok=True)
        (elsewhere / "files").mkdir()
        (elsewhere / "files" / "notes.txt").write_text("my notes\n", encoding="utf-8")
        folder.parent.symlink_to(elsewhere)
    with pytest.raises(UsageError, match="is a link"):
        remove_document(root, "linked", "notes.txt")
    with pytest.raises(UsageError, match="is a link"):
        add_files(root, "linked", [("new.md", b"# New\n\nText.\n")])
    assert sorted(p.name for p in elsewhere.iterdir()) == sorted(["notes.txt", "holiday.jpg"]
                                                                  + (["files"] if linked == "collection" else []))
    assert (elsewhere / "notes.txt").read_text() == "my notes\n"


def test_a_docx_with_broken_xml_is_skipped_and_the_collection_takes_more(root, tmp_path):
    """A real package whose document.xml stops midway once failed the whole upload, stayed in the uploads
    folder and failed every later upload to the collection (hostile tester, high)."""
    import docx

    docx.Document().save(tmp_path / "whole.docx")
    parts = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "whole.docx") as whole, zipfile.ZipFile(parts, "w") as broken:
        for item in whole.infolist():
            part = whole.read(item)
            broken.writestr(item, part[:len(part) // 2] if item.filename == "word/document.xml" else part)
    _, report = add_files(root, "harbour", [("broken.docx", parts.getvalue()), ("ferry.md", FERRY.encode())])
    assert [(s.path, s.reason.startswith("not a valid .docx")) for s in report.skipped] == [("broken.docx", True)]
    assert sorted(p.name for p in uploads_dir(root.index_dir, "harbour").iterdir()) == ["ferry.md"]
    _, report = add_files(root, "harbour", [("light.txt", LIGHT.encode())])
    assert report.documents == 2 and not report.skipped


def test_the_upload_quota_counts_each_collections_index_too(root, monkeypatch):
    # Hostile-tester finding: the quota counted document bytes only, so a 45-byte upload to each new name added
    # a 400 kB index every time and the disk filled far past the quota.
    from index import uploads

    monkeypatch.setattr(uploads, "MAX_UPLOADS_TOTAL_BYTES", 1_000_000)
    accepted = 0
    for n in range(8):
        added, report = add_files(root, f"spam{n}", [("tiny.txt", b"The tiny doc says the sky was green in 1999.\n")])
        if report is None:
            assert "upload collections (documents and indexes) would pass 1 MB" in added.refused[0].reason
            break
        accepted += 1
    assert 1 <= accepted < 8
    assert uploads.uploads_in_use(root) <= 1_000_000 + 500_000  # one collection's index past the check at most
