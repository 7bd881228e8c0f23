from index.load import canonical_text, load_corpus


def test_canonical_text_keeps_newlines_and_drops_bom():
    assert canonical_text("\ufeffa\r\nb\rc\n".encode("utf-8")) == "a\r\nb\rc\n"


def test_bad_files_are_skipped_with_a_reason_and_the_rest_load(tmp_path):
    (tmp_path / "good.txt").write_text("A fine sentence.", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\x00\x00\x01")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    docs, skipped = load_corpus(tmp_path)
    assert [d.source for d in docs] == ["good.txt"]
    reasons = {s.path: s.reason for s in skipped}
    assert reasons["latin1.txt"].startswith("not UTF-8")
    assert reasons["binary.txt"] == "binary file"
    assert reasons["empty.txt"] == "empty"
    assert reasons["scan.pdf"].startswith("unreadable PDF")
    assert "unsupported" in reasons["image.png"]


def test_sources_are_posix_paths_relative_to_the_corpus(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.txt").write_text("Nested text.", encoding="utf-8")
    docs, _ = load_corpus(tmp_path)
    assert [d.source for d in docs] == ["sub/deep.txt"]
