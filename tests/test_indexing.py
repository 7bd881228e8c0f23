import pytest

from index.build import build_index
from index.load import load_corpus
from index.config import load_settings
from qa.engine import QA


@pytest.fixture
def settings(tmp_path, corpus_copy):
    return load_settings(corpus=corpus_copy, index_dir=tmp_path / "index")


@pytest.mark.slow
def test_a_run_with_no_file_changed_reads_nothing_and_still_sees_the_smallest_edit(settings, corpus_copy, monkeypatch):
    (corpus_copy / "tide.txt").write_text("High tide at Rye is at 9:40.\n", encoding="utf-8")
    (corpus_copy / "blob.txt").write_bytes(b"\x00\x01binary")
    first = build_index(settings)
    assert [s.path for s in first.skipped] == ["blob.txt"]

    import index.build

    def must_not_read(*_, **__):
        raise AssertionError("an unchanged corpus was read again")

    monkeypatch.setattr(index.build, "load_corpus", must_not_read)
    again = build_index(settings)
    assert (again.documents, again.chunks, again.embedded) == (first.documents, first.chunks, 0)
    assert len(again.unchanged) == first.documents and [s.path for s in again.skipped] == ["blob.txt"]
    monkeypatch.undo()

    # Same size, one digit different: a later mtime is enough to read it again.
    (corpus_copy / "tide.txt").write_text("High tide at Rye is at 9:45.\n", encoding="utf-8")
    edited = build_index(settings)
    assert edited.changed == ["tide.txt"] and edited.embedded == 1
    assert "9:45" in QA(settings, build_if_missing=False).ask("When is high tide at Rye?").answer

    # Same size again, with the old modification time put back (touch -r): the change time still moved.
    import os

    tide = corpus_copy / "tide.txt"
    before = tide.stat()
    tide.write_text("High tide at Rye is at 9:50.\n", encoding="utf-8")
    os.utime(tide, ns=(before.st_atime_ns, before.st_mtime_ns))
    restored = build_index(settings)
    assert restored.changed == ["tide.txt"] and "9:50" in QA(settings, build_if_missing=False).ask(
        "When is high tide at Rye?").answer
    # A chmod (which could make a file unreadable) changes nothing else a stat shows: the files are read again.
    read = []
    monkeypatch.setattr(index.build, "load_corpus", lambda *a, **k: read.append(1) or load_corpus(*a, **k))
    tide.chmod(0o600)
    assert build_index(settings).unchanged and read == [1]


def test_a_folder_that_cannot_be_read_is_reported_not_silently_dropped(tmp_path, monkeypatch):
    import os

    from index.load import list_files

    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a.txt").write_text("A.", encoding="utf-8")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.txt").write_text("B.", encoding="utf-8")
    real_scandir = os.scandir

    def scandir(path="."):  # what chmod 000 does to a folder for a user without root's override
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found, refused = list_files(tmp_path)
    assert [source for _, source in found] == ["open/a.txt"]
    assert [(s.path, s.reason) for s in refused] == [("locked/", "folder cannot be read (Permission denied)")]


@pytest.mark.slow
def test_incremental_runs_embed_only_what_changed(settings, corpus_copy):
    first = build_index(settings)
    assert first.embedded == first.chunks == 37 and len(first.added) == 2

    again = build_index(settings)
    assert again.embedded == 0 and len(again.unchanged) == 2

    (corpus_copy / "new.txt").write_text("The river Quill floods every April.\n\nFerries stop for a week.",
                                         encoding="utf-8")
    added = build_index(settings)
    assert added.added == ["new.txt"] and added.embedded == 2

    (corpus_copy / "new.txt").write_text("The river Quill floods every April.\n\nFerries stop for a month.",
                                         encoding="utf-8")
    changed = build_index(settings)
    assert changed.changed == ["new.txt"] and changed.embedded == 1  # the unchanged paragraph is reused

    answer = QA(settings, build_if_missing=False).ask("How long do the ferries stop for?")
    assert "month" in answer.answer and not answer.abstained

    (corpus_copy / "new.txt").unlink()
    removed = build_index(settings)
    assert removed.removed == ["new.txt"] and removed.embedded == 0 and removed.chunks == 37
    assert QA(settings, build_if_missing=False).ask("How long do the ferries stop for?").abstained


@pytest.mark.slow
def test_interrupted_run_leaves_the_old_index_answering(settings, corpus_copy, monkeypatch):
    build_index(settings)
    (corpus_copy / "002_20261bb465ea9f56.txt").write_text("Nothing about drugs here.", encoding="utf-8")

    import index.build

    def crash(_text):
        raise KeyboardInterrupt

    monkeypatch.setattr(index.build, "term_counts", crash)  # dies inside the side-store transaction
    with pytest.raises(KeyboardInterrupt):
        build_index(settings)
    monkeypatch.undo()

    answer = QA(settings, build_if_missing=False).ask("Which drug killed Daniel Whitworth?")
    assert "GHB" in answer.answer
    assert build_index(settings).changed == ["002_20261bb465ea9f56.txt"]  # the next run finishes the job


@pytest.mark.slow
def test_rebuild_replaces_the_collection(settings):
    build_index(settings)
    report = build_index(settings, rebuild=True)
    assert report.rebuilt and report.embedded == 37
    assert not QA(settings, build_if_missing=False).ask("Which drug killed Daniel Whitworth?").abstained
    build_index(settings, rebuild=True)
    # Chroma keeps a dropped collection's vector folder; a rebuild removes it, so rebuilds do not fill the disk.
    import sqlite3

    chroma = settings.index_dir / "chroma"
    conn = sqlite3.connect(chroma / "chroma.sqlite3")
    live = {row[0] for row in conn.execute("SELECT id FROM segments")}
    conn.close()
    folders = {p.name for p in chroma.iterdir() if p.is_dir()}
    assert folders and folders <= live


def _postings(settings) -> dict:
    """term -> sorted (chunk text, tf, length): comparable across indexes whatever the row numbers."""
    import sqlite3

    from index.store import side_store_path, unpack_postings

    conn = sqlite3.connect(side_store_path(settings.index_dir))
    text = dict(conn.execute("SELECT row, text FROM chunks"))
    out = {}
    for term, df, data in conn.execute("SELECT term, df, data FROM postings"):
        rows, tf, length = unpack_postings(data)
        assert df == len(rows)
        out[term] = sorted(zip((text[r] for r in rows), tf.tolist(), length.tolist()))
    return out


@pytest.mark.slow
def test_incremental_postings_match_a_fresh_build(settings, corpus_copy, tmp_path):
    build_index(settings)
    seed = corpus_copy / "000_66c9290ad1937cce.txt"
    seed.write_text(seed.read_text(encoding="utf-8").replace("58 unexplained", "60 unexplained"), encoding="utf-8")
    (corpus_copy / "extra.txt").write_text("Police officers met the families in March.", encoding="utf-8")
    (corpus_copy / "002_20261bb465ea9f56.txt").unlink()
    build_index(settings)
    fresh = load_settings(corpus=corpus_copy, index_dir=tmp_path / "fresh")
    build_index(fresh)
    assert _postings(settings) == _postings(fresh)


def test_index_from_another_version_asks_for_a_rebuild(tmp_path):
    import sqlite3

    from index.errors import IndexMissingError

    (tmp_path / "index.sqlite").parent.mkdir(exist_ok=True)
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('schema', '1')")
    conn.commit()
    with pytest.raises(IndexMissingError, match="--rebuild"):
        QA(load_settings(index_dir=tmp_path), build_if_missing=False)


def test_a_newer_parser_rewrites_the_text_of_unchanged_bytes(tmp_path, monkeypatch):
    # Issue 24 (qa eval differed from a fresh clone): a parser change (HTML's <br> became a line break) re-read the
    # same bytes into another canonical text, but the store kept the old text beside the new chunks' offsets, so
    # canonical_text[start:end] no longer equalled the cited text, and an upgraded index answered differently.
    from dataclasses import replace

    from index import build, load
    from index.config import load_settings
    from index.store import open_side_store, side_store_path

    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "ferry.html").write_text("<html><body><p>The ferry leaves at nine.</p><p>The bus leaves at ten.</p>"
                                       "</body></html>", encoding="utf-8")
    settings = load_settings(corpus=corpus, index_dir=tmp_path / "index")
    build.build_index(settings)
    older = load.read_html

    def newer(data):  # the same bytes, read into a longer text: every offset moves
        parsed = older(data)
        return replace(parsed, text="Ferries. " + parsed.text,
                       blocks=[replace(b, start=b.start + 9, end=b.end + 9) for b in parsed.blocks])

    monkeypatch.setattr(load, "read_html", newer)
    monkeypatch.setattr(build, "_indexer_code_digest", lambda: "a newer indexer")
    report = build.build_index(settings)
    assert report.changed == ["ferry.html"] and report.embedded == 0  # re-read, not re-embedded
    conn = open_side_store(side_store_path(settings.index_dir))
    text = conn.execute("SELECT text FROM documents").fetchone()[0]
    assert text.startswith("Ferries. The ferry")
    chunks = conn.execute('SELECT start, "end", text FROM chunks').fetchall()
    assert chunks and all(text[start:end] == chunk for start, end, chunk in chunks)
