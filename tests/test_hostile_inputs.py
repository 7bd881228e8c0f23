"""Hostile tester, round 5: corpora, questions and command lines built to crash or exhaust the tool. Each
used to end in a traceback, a hang or gigabytes of memory; each is now one line or a skip with a warning."""

import os
import subprocess
import sys

import pytest

from .conftest import ROOT, SEEDS
from .test_cli import run_qa


def test_a_symbolic_link_loop_is_skipped_and_the_rest_indexed(tmp_path):
    from index.load import load_corpus

    corpus = tmp_path / "loop"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The tower was built in 1066.\n", encoding="utf-8")
    (corpus / "loop2.txt").symlink_to("loop1.txt")
    (corpus / "loop1.txt").symlink_to("loop2.txt")
    documents, skipped = load_corpus(corpus)
    assert [d.source for d in documents] == ["a.txt"]
    assert {s.path for s in skipped} == {"loop1.txt", "loop2.txt"}
    result = run_qa("index", str(corpus), index_dir=tmp_path / "idx")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "warning: skipped loop1.txt: symbolic link to a file outside the corpus, or a link loop" in result.stderr


def test_folders_nested_past_the_recursion_limit_are_read(tmp_path):
    from index.load import list_files

    folder = tmp_path / "deep"
    folder.mkdir()
    path = str(folder)
    for _ in range(1300):  # deeper than Python's recursion limit, well under PATH_MAX
        path += "/d"
        os.mkdir(path)
    with open(path + "/bottom.txt", "w", encoding="utf-8") as f:
        f.write("The well is 40 metres deep.\n")
    (folder / "top.txt").write_text("The mill was built in 1650.\n", encoding="utf-8")
    try:
        files, skipped = list_files(folder)
    finally:  # bottom up, by hand: pytest's own clean-up (shutil.rmtree) would hit the recursion limit too
        os.remove(path + "/bottom.txt")
        while path != str(folder):
            os.rmdir(path)
            path = path.rsplit("/", 1)[0]
    assert [source.rsplit("/", 1)[-1] for _, source in files] == ["bottom.txt", "top.txt"] and not skipped


def test_a_huge_sparse_file_is_skipped_without_reading_it_into_memory(tmp_path):
    big = tmp_path / "huge.txt"
    with big.open("wb") as f:
        f.truncate(3 * 1024**3)  # 3 GB of holes: no disk used, but read_bytes() took 3 GB of memory
    # VmHWM, the peak of this process image: ru_maxrss would carry over pytest's own peak through fork and exec
    probe = ("import re; from pathlib import Path; from index.load import read_document; "
             f"print(read_document(Path({str(big)!r}), 'huge.txt')[0].reason); "
             "print(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    reason, peak_kb = out.stdout.split("\n")[:2]
    assert reason == "larger than 20 MB"
    assert int(peak_kb) < 1_000_000  # KB: far below the file's 3 GB


def test_a_question_of_many_parts_is_searched_once():
    from qa.engine import MAX_PARTS, split_question

    assert split_question(("and which " * 200)[:1999]) == [("and which " * 200)[:1999]]
    parts = ", and ".join(f"which colour is flag {n}" for n in range(MAX_PARTS))
    assert len(split_question(parts + "?")) == MAX_PARTS


def test_a_question_with_bytes_that_are_not_utf8_is_a_usage_error(seed_qa):
    from index.errors import UsageError

    with pytest.raises(UsageError, match="not valid UTF-8"):
        seed_qa.ask("When was it built? \udcff\udcfe")


def test_qa_chat_reports_stray_bytes_and_keeps_the_session(seed_settings):
    env = {**os.environ, "QA_INDEX_DIR": str(seed_settings.index_dir), "QA_CORPUS": str(SEEDS)}
    result = subprocess.run([sys.executable, "-m", "qa", "chat"], cwd=ROOT, env=env, capture_output=True,
                            input=b"\xff\xfe bad bytes\nWhich drug killed Daniel Whitworth?\n", timeout=120, check=False)
    out = result.stdout.decode()
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    assert "qa: The question is not valid UTF-8 text" in out and "GHB" in out


@pytest.mark.parametrize("content, link", [(b"Who?\n\xff\xfe\n", False), (None, True)])
def test_a_bad_examples_file_is_ignored(seed_qa, tmp_path, capsys, content, link):
    from ui.chat import EXAMPLES_FILE, example_questions

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    if link:  # a link out of the corpus: its lines would be shown to every client of the server
        (corpus / EXAMPLES_FILE).symlink_to(outside)
    else:
        (corpus / EXAMPLES_FILE).write_bytes(content)
    examples = example_questions(corpus, seed_qa)
    assert examples and all(e.startswith("What does the document say about") for e in examples)
    assert link or "warning: .qa-examples.txt ignored: not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b'{"id": "a", "question": "x"\n', "bad.jsonl:1: not JSON"),
    (b"[1, 2, 3]\n", "bad.jsonl:1: not an eval item"),
    (b"\xff\xfe\n", "cannot be read: not UTF-8"),
])
def test_a_broken_eval_set_is_one_line_and_exit_2(seed_settings, tmp_path, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    result = run_qa("eval", "--set", str(bad), "--out", str(tmp_path / "out"), index_dir=seed_settings.index_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr.splitlines()[-1]


def test_an_eval_report_folder_that_is_a_file_fails_before_the_run(seed_settings, tmp_path):
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    result = run_qa("eval", "--out", str(tmp_path / "taken"), index_dir=seed_settings.index_dir)
    assert result.returncode == 2 and result.stderr.strip().endswith("File exists"), result.stderr


def test_a_corpus_path_that_does_not_exist_is_a_usage_error(seed_settings, tmp_path):
    result = run_qa("--corpus", str(tmp_path / "nonexist"), "ask", "Which drug killed Daniel Whitworth?",
                    index_dir=seed_settings.index_dir)
    assert result.returncode == 2 and "No such file or folder" in result.stderr and not result.stdout


def test_serving_beyond_localhost_without_a_token_is_refused(seed_settings):
    result = run_qa("serve", "--host", "0.0.0.0", "--port", "18799", index_dir=seed_settings.index_dir,
                    env_extra={"QA_TOKEN": ""})
    assert result.returncode == 2
    assert result.stderr.startswith("qa: error: --host 0.0.0.0 would let other machines read every indexed")
