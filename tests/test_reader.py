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
    assert answer > 5 > 0 > related > unrelated


def test_batched_scores_equal_single_pair_scores(real_reader):
    # Equal token lengths and different ones: a batch's shared int8 scale changed scores even without padding.
    question = "How many kinds of triggers are there?"
    texts = ["There are three kinds of triggers:", "Explicit triggers, file triggers and interest triggers.",
             "Triggers are run by dpkg.", "A trigger is a thing.", "The sky is blue and so is the sea."]
    together = real_reader.scores(question, texts)
    assert together == [real_reader.scores(question, [t])[0] for t in texts]


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
