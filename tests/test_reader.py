"""The reader (the shipped MS MARCO cross-encoder), loaded for real and offline."""

import shutil

import pytest

from qa import reader


@pytest.fixture
def real_reader():
    reader.reset()
    yield reader.get_reader()
    reader.reset()


def test_known_pairs_score_in_order(real_reader):
    question = "What is the capital of France?"
    answer, related, unrelated = real_reader.scores(question, [
        "Paris is the capital of France.", "France is a country in Europe.", "Bananas are rich in potassium."])
    assert answer > 5 and 0 > related > unrelated


def test_batched_scores_equal_single_pair_scores(real_reader):
    # Equal token lengths and different ones: a batch's shared int8 scale changed scores even without padding.
    question = "How many kinds of triggers are there?"
    texts = ["There are three kinds of triggers:", "Explicit triggers, file triggers and interest triggers.",
             "Triggers are run by dpkg.", "A trigger is a thing.", "The sky is blue and so is the sea."]
    together = real_reader.scores(question, texts)
    assert together == [real_reader.scores(question, [t])[0] for t in texts]


def test_the_optimised_copy_scores_as_the_model_does_and_a_damaged_copy_is_remade(tmp_path, monkeypatch):
    # A cold `qa ask` opens the graph optimised once and saved; its scores must be the model's own.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    question = "What is the capital of France?"
    texts = ["Paris is the capital of France.", "France is a country in Europe.", "Bananas are rich in potassium."]
    reader.reset()
    first = reader.get_reader().scores(question, texts)  # optimises the graph and saves it
    [copy] = (tmp_path / "grounded-qa").glob("reader-*.onnx")
    reader.reset()
    assert reader.get_reader().scores(question, texts) == first  # from the saved copy
    copy.write_bytes(b"half a file")
    reader.reset()
    try:
        assert reader.get_reader().scores(question, texts) == first
    finally:
        reader.reset()
    assert copy.stat().st_size > 1_000_000 and not list((tmp_path / "grounded-qa").glob(".*.tmp"))


def test_damaged_model_file_is_one_line_naming_it(tmp_path, monkeypatch):
    shutil.copy(reader.model_dir() / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07not an onnx model" * 100)
    monkeypatch.setenv("QA_READER_DIR", str(tmp_path))
    reader.reset()
    try:
        with pytest.raises(reader.ReaderUnavailable) as caught:
            reader.get_reader()
    finally:
        reader.reset()
    message = str(caught.value)
    assert str(tmp_path / "model.onnx") in message and "damaged" in message and "\n" not in message


def test_missing_model_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_READER_DIR", str(tmp_path))
    reader.reset()
    try:
        with pytest.raises(reader.ReaderUnavailable, match="model.onnx is missing"):
            reader.get_reader()
    finally:
        reader.reset()


GAUGES = """# Tide gauges at Porthkennack

The harbour office has kept tide records since 1962.

There are three kinds of tide gauge on the quay:

- float gauges in stilling wells
- pressure gauges on the sea wall
- radar gauges above the lifeboat slip

Each gauge is read by the harbour master every morning at seven. The readings go to the county archive in
Truro once a month, where they are kept on paper.
"""


def qa_over(tmp_path_factory, name: str, text: str):
    """A QA over one Markdown document, its index built."""
    from index.build import build_index
    from index.config import load_settings
    from qa.engine import QA

    corpus = tmp_path_factory.mktemp(name)
    (corpus / f"{name}.md").write_text(text)
    settings = load_settings(corpus=corpus, index_dir=tmp_path_factory.mktemp(f"{name}-index"))
    build_index(settings)
    reader.reset()
    return QA(settings, build_if_missing=False)


@pytest.fixture(scope="module")
def gauges_qa(tmp_path_factory):
    return qa_over(tmp_path_factory, "gauges", GAUGES)


def test_a_sentence_restating_the_question_brings_its_answer(gauges_qa):
    answer = gauges_qa.ask("What kinds of tide gauge are on the quay?")
    assert not answer.abstained and not answer.warnings
    assert "There are three kinds of tide gauge on the quay:" in answer.citations[0].text
    assert "float gauges" in answer.citations[0].text  # the list item after it, cited with it
    text = (gauges_qa.source_text(answer.citations[0].source))
    assert text[answer.citations[0].start:answer.citations[0].end] == answer.citations[0].text


def test_a_near_miss_is_declined(gauges_qa):
    answer = gauges_qa.ask("How many radar gauges were bought for the quay in 1962?")
    assert answer.abstained and not answer.citations


def test_a_damaged_model_file_falls_back_with_a_warning(gauges_qa, tmp_path):
    import json
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    shutil.copy(reader.model_dir() / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07not an onnx model" * 100)
    env = {**os.environ, "QA_READER_DIR": str(tmp_path), "QA_INDEX_DIR": str(gauges_qa.settings.index_dir),
           "QA_CORPUS": str(gauges_qa.settings.corpus), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "qa", "ask", "When is each gauge read?", "--json"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warning = f"the reader model file {tmp_path / 'model.onnx'} is damaged"
    assert next(line for line in result.stderr.splitlines() if warning in line).startswith("warning: ")
    data = json.loads(result.stdout)
    assert len(data["warnings"]) == 1 and warning in data["warnings"][0]
    assert "seven" in data["answer"]  # the selector without the reader still answers


LIGHTHOUSE = """# The lighthouse at Porthkennack

The lighthouse stands 38 metres tall on the northern headland. It was built of granite in 1871. Its lamp was
first lit with paraffin. Electricity reached the tower in 1926. The light flashes white twice every ten seconds.
Ships can see it from 24 nautical miles away. Three keepers lived in the cottages beside the tower. The last
keeper left when the light was automated in 1990. The fog signal was removed in 2005. Visitors may climb the
115 steps on summer afternoons. The gallery gives a view of the whole bay. The tower is painted white with a
red lantern. A small museum in the old oil store shows the original lens.
"""


@pytest.fixture(scope="module")
def lighthouse_qa(tmp_path_factory):
    return qa_over(tmp_path_factory, "lighthouse", LIGHTHOUSE)


def test_the_reader_reads_past_the_first_few_only_without_a_sure_answer(lighthouse_qa, monkeypatch):
    from qa.answer import READ_CANDIDATES, READ_FIRST, READ_PAIRS

    real = reader.get_reader()
    reads, score = [], real.scores
    monkeypatch.setattr(real, "scores", lambda question, texts: reads.append(len(texts)) or score(question, texts))

    sure = lighthouse_qa.ask("How tall is the lighthouse?")
    assert "38 metres" in sure.answer
    assert reads[0] == READ_FIRST and len(reads) == 2 and reads[1] <= READ_PAIRS  # the first few, then pairs

    reads.clear()
    lighthouse_qa.ask("Who designed the lighthouse's original lens?")  # no sentence says: none reads as sure
    assert reads[0] == READ_FIRST and READ_FIRST < reads[0] + reads[1] <= READ_CANDIDATES  # the rest read too
