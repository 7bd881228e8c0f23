import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, SEEDS


def run_qa(*args, index_dir, cwd=ROOT, env_extra=None):
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "QA_CORPUS": str(SEEDS), "HF_HUB_OFFLINE": "1",
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "qa", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def built_index(seed_settings):
    return seed_settings.index_dir


def test_ask_prints_the_cited_answer(built_index):
    result = run_qa("ask", "Which drug killed Daniel Whitworth?", index_dir=built_index)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ("Mr Whitworth, 21, was killed by Port after being given a fatal dose "
                                             "of the date rape drug GHB [1].")
    citation = result.stdout.splitlines()[2]
    assert citation.startswith("[1] 002_20261bb465ea9f56.txt:22 (Slow pace of probe into Stephen Port")  # its title
    assert citation.endswith('  "Mr Whitworth, 21, was killed by Port after being given a fatal dose of the date rape '
                             'drug GHB."')


def test_ask_json_is_the_answer_shape(built_index):
    result = run_qa("ask", "How old was Daniel Whitworth?", "--json", index_dir=built_index)
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert set(data) >= {"question", "search_query", "answer", "abstained", "citations", "passages", "timings_ms"}
    citation = data["citations"][0]
    text = (SEEDS / citation["source"]).read_bytes().decode("utf-8")
    assert text[citation["start"]:citation["end"]] == citation["text"]


def test_abstention_exits_zero_and_shows_closest_passages(built_index):
    result = run_qa("ask", "What was the weather in Barking?", index_dir=built_index)
    assert result.returncode == 0
    assert result.stdout.startswith("The documents don't say.")
    assert "Closest passages:" in result.stdout


@pytest.mark.parametrize("args, code, message", [
    (["ask", ""], 2, "The question is empty"),
    (["ask", "x" * 2001], 2, "limit is 2000"),
    (["ask", "hi", "-k", "0"], 2, "k must be"),
    (["ask", "hi", "--bogus"], 2, "unrecognized arguments"),
    (["index", "/no/such/folder"], 2, "No such file or folder"),
    (["source", "../../etc/passwd"], 2, "Unknown source"),
    (["source", "000_66c9290ad1937cce.txt", "--start", "5", "--end", "1"], 2, "start <= end"),
    (["serve", "--port", "99999"], 2, "--port must be between 1 and 65535"),
    (["eval", "--set", "/no/such.jsonl"], 2, "No such eval set"),
])
def test_bad_input_gets_one_line_and_an_exit_code(built_index, args, code, message):
    result = run_qa(*args, index_dir=built_index)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_source_prints_canonical_text_and_spans(built_index):
    result = run_qa("source", "002_20261bb465ea9f56.txt", index_dir=built_index)
    assert result.stdout == (SEEDS / "002_20261bb465ea9f56.txt").read_bytes().decode("utf-8")
    span = run_qa("source", "002_20261bb465ea9f56.txt", "--start", "1409", "--end", "1503", index_dir=built_index)
    assert ">>>Mr Whitworth, 21," in span.stdout and "GHB.<<<" in span.stdout


def test_missing_index_is_an_error_for_source(tmp_path):
    result = run_qa("source", "x.txt", index_dir=tmp_path / "none")
    assert result.returncode == 1 and "run `qa index`" in result.stderr


@pytest.mark.slow
def test_first_ask_builds_the_index_and_bad_files_are_skipped(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "note.txt").write_text("The lighthouse keeper is called Ada Quist.", encoding="utf-8")
    (corpus / "bad.txt").write_bytes(b"\xff\xfe\x00binary")
    (corpus / "latin.txt").write_bytes("na\xefve".encode("latin-1"))
    result = run_qa("ask", "Who is the lighthouse keeper?", index_dir=tmp_path / "idx",
                    env_extra={"QA_CORPUS": str(corpus)})
    assert result.returncode == 0, result.stderr
    assert "Ada Quist" in result.stdout
    assert "warning: skipped bad.txt: binary file" in result.stderr
    assert "warning: skipped latin.txt: not UTF-8" in result.stderr


def test_an_empty_folder_does_not_wipe_the_index_unless_allowed(tmp_path, corpus_copy):
    assert run_qa("index", str(corpus_copy), index_dir=tmp_path / "idx").returncode == 0
    (tmp_path / "empty").mkdir()
    refused = run_qa("index", str(tmp_path / "empty"), "--replace", index_dir=tmp_path / "idx")
    assert refused.returncode == 2 and "No readable documents" in refused.stderr and "--allow-empty" in refused.stderr
    assert "Traceback" not in refused.stderr
    still = run_qa("ask", "Which drug killed Daniel Whitworth?", index_dir=tmp_path / "idx")
    assert "GHB" in still.stdout
    emptied = run_qa("index", str(tmp_path / "empty"), "--allow-empty", "--replace", index_dir=tmp_path / "idx")
    assert emptied.returncode == 0 and "the index is now empty" in emptied.stderr
    assert run_qa("source", "--list", index_dir=tmp_path / "idx").stdout.strip() == ""


def test_chat_resolves_follow_ups(built_index):
    env = {**os.environ, "QA_INDEX_DIR": str(built_index), "QA_CORPUS": str(SEEDS)}
    result = subprocess.run([sys.executable, "-m", "qa", "chat"], input="Which drug killed Daniel Whitworth?\n"
                            "How old was he?\n\n", cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "searched for: How old was Daniel Whitworth?" in result.stdout
    assert "Mr Whitworth, 21" in result.stdout


def test_chat_follow_ups_that_open_with_and(built_index):
    # Issue 24: "and how old was he?" was searched as "Which drug killed how old was he?", and "and who is his
    # stepmother?" abstained although the same question without "and" answered.
    env = {**os.environ, "QA_INDEX_DIR": str(built_index), "QA_CORPUS": str(SEEDS)}
    result = subprocess.run([sys.executable, "-m", "qa", "chat"], input="Which drug killed Daniel Whitworth?\n"
                            "and how old was he?\nand who is his stepmother?\n\n", cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0
    assert "searched for: How old was Daniel Whitworth?" in result.stdout
    assert "searched for: Who is Daniel Whitworth's stepmother?" in result.stdout
    assert "Mr Whitworth, 21" in result.stdout and "Mandy Pearson" in result.stdout
    assert "The documents don't say" not in result.stdout


def test_chat_names_its_collection_and_answers_help_with_help(built_index):
    # Issue 24: qa chat did not say which collection it was on, and answered "help" as a question.
    env = {**os.environ, "QA_INDEX_DIR": str(built_index), "QA_CORPUS": str(SEEDS)}
    result = subprocess.run([sys.executable, "-m", "qa", "chat"], input="help\nWhich drug killed Daniel Whitworth?\n"
                            "new\nHow old was he?\n\n", cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("Collection 'default': 2 documents from seeds.")
    assert "Commands: help" in result.stdout and "searched for: help" not in result.stdout
    assert "GHB" in result.stdout and "Started over" in result.stdout
    assert "searched for: How old was Daniel Whitworth?" not in result.stdout  # "new" forgot the earlier turns


def test_index_help_and_summary_speak_of_one_folder_and_count_properly(tmp_path):
    usage = run_qa("index", "--help", index_dir=tmp_path / "idx").stdout
    assert "[FOLDER]" in usage and "paths" not in usage
    two = run_qa("index", "a", "b", index_dir=tmp_path / "idx")
    assert two.returncode == 2 and "unrecognized arguments: b" in two.stderr
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "note.txt").write_text("The ferry leaves at nine.", encoding="utf-8")
    indexed = run_qa("index", str(tmp_path / "one"), index_dir=tmp_path / "idx")
    assert indexed.stdout.startswith("Indexed 1 document, 1 chunk (1 added")


def test_serve_on_a_busy_port_is_a_one_line_error(built_index):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_qa("serve", "--port", str(busy.getsockname()[1]), index_dir=built_index)
    assert result.returncode == 1
    assert "Cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
