import pytest

from index.build import build_index
from index.config import load_settings
from qa.engine import QA


@pytest.fixture
def settings(tmp_path, corpus_copy):
    return load_settings(corpus=corpus_copy, index_dir=tmp_path / "index")


@pytest.mark.slow
def test_incremental_runs_embed_only_what_changed(settings, corpus_copy):
    first = build_index(settings)
    assert first.embedded == first.chunks == 39 and len(first.added) == 2

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
    assert removed.removed == ["new.txt"] and removed.embedded == 0 and removed.chunks == 39
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
    assert report.rebuilt and report.embedded == 39
    assert not QA(settings, build_if_missing=False).ask("Which drug killed Daniel Whitworth?").abstained
