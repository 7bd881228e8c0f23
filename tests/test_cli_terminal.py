"""The CLI in a terminal: `qa index`'s progress bar and `qa chat`'s line editing, driven through a pseudo-terminal."""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from .conftest import ROOT, SEEDS

pytestmark = pytest.mark.slow
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")


class Terminal:
    """`qa ARGS` with stdin, stdout and stderr on one pseudo-terminal of the given width."""

    def __init__(self, *args, env, columns=100):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        self.proc = subprocess.Popen([sys.executable, "-m", "qa", *args], stdin=slave, stdout=slave, stderr=slave,
                                     cwd=ROOT, env=env, start_new_session=True)
        os.close(slave)
        self.master, self.raw = master, b""

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def read_until(self, done, timeout=180) -> str:
        """Read until done(text so far) holds or the program ends; the text read."""
        deadline = time.monotonic() + timeout
        while not done(self.text) and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the program ended and closed the terminal
                    break
                if not chunk:
                    break
                self.raw += chunk
        return self.text

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        self.read_until(lambda _: False, timeout=60 if self.proc.poll() is None else 1)
        os.close(self.master)
        return self.proc.wait(timeout=60)


@pytest.fixture
def corpus_with_a_bad_file(tmp_path):
    """400 distinct paragraphs in 40 files, and one binary file."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in range(40):
        (corpus / f"notes-{f:02d}.txt").write_text("\n\n".join(
            f"Note {p} of file {f}: the harbour crane number {f * 10 + p} was inspected on day {p} by team {f}."
            for p in range(10)), encoding="utf-8")
    (corpus / "broken.txt").write_bytes(b"\xff\xfe\x00\x01 not text")
    return corpus


def _env(tmp_path, **extra):
    return {**os.environ, "QA_INDEX_DIR": str(tmp_path / "idx"), "QA_CORPUS": str(SEEDS), "HF_HUB_OFFLINE": "1",
            **extra}


def test_index_bar_counts_embedded_chunks_shows_eta_and_skips_as_found(tmp_path, corpus_with_a_bad_file):
    term = Terminal("index", str(corpus_with_a_bad_file), env=_env(tmp_path))
    assert term.close() == 0, term.text
    screen = ANSI.sub("", term.text)
    summary = re.search(r"Indexed 40 documents, (\d+) chunks \(.*; (\d+) chunks embedded\)", screen)
    assert summary, screen
    embedded = int(summary.group(2))
    assert embedded == 400
    bars = re.findall(r"embedding \[[#.]+\] (\d+)/(\d+) chunks", screen)
    assert bars[-1] == (str(embedded), str(embedded))  # the bar ends where the summary does
    assert re.search(r"ETA \d+(m\d\ds|s)", screen)  # an estimate while it runs
    assert re.search(r"reading \[[#.]+\] 41/41 files", screen)
    warning = "warning: skipped broken.txt: binary file"
    assert screen.count(warning) == 1 and screen.index(warning) < screen.index("Indexed 40 documents")


def test_index_without_a_terminal_prints_only_the_summary_on_stdout(tmp_path, corpus_with_a_bad_file):
    result = subprocess.run([sys.executable, "-m", "qa", "index", str(corpus_with_a_bad_file)], check=False,
                            cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and result.stdout.startswith("Indexed 40 documents")
    assert result.stderr.count("warning: skipped broken.txt: binary file") == 1
    assert "embedding [" not in result.stderr and "\r" not in result.stderr  # no bar when nobody watches


def test_chat_edits_lines_recalls_history_and_wraps_answers(seed_settings):
    env = {**os.environ, "QA_INDEX_DIR": str(seed_settings.index_dir), "QA_CORPUS": str(SEEDS), "HF_HUB_OFFLINE": "1"}
    term = Terminal("chat", env=env, columns=60)

    def prompts(n):
        return lambda text: text.count("\n> ") >= n

    term.read_until(prompts(1))
    term.send("Which drug killed Daniel Whitworth?\r")
    term.read_until(prompts(2))
    term.send("How old was he?\r")
    before_recall = len(term.read_until(prompts(3)))
    term.send("\x1b[A")  # up arrow: the previous question comes back to be edited or sent
    assert "How old was he?" in term.read_until(lambda text: "How old was he?" in text[before_recall:], timeout=30)[
        before_recall:]
    term.send("\r")
    term.read_until(prompts(4))
    term.send("\r")  # an empty line ends the chat
    assert term.close() == 0
    screen = ANSI.sub("", term.text).replace("\r\n", "\n")
    assert "GHB" in screen
    assert screen.count("searched for: How old was Daniel Whitworth?") == 2  # the follow-up, then its recall
    lines = screen.splitlines()
    # Answers and citations wrap to the terminal between words (issue 24: the terminal broke citation lines
    # mid-word); a citation's continuation is indented under it.
    shown = [line for line in lines if line and not line.startswith("> ")]
    assert all(len(line) <= 60 for line in shown), [line for line in shown if len(line) > 60]
    cited = lines.index(next(line for line in lines if line.startswith("[1] ")))
    assert lines[cited + 1].startswith("    ")
    assert "was killed by Port after being given a fatal dose" in " ".join(x.strip() for x in lines[cited:cited + 4])


def test_make_chat_stops_cleanly_on_ctrl_c(seed_settings):
    # Issue 24: Ctrl-C ended `make chat` with "make: *** [Makefile:..: chat] Error 130" (or Interrupt): the
    # documented way to stop the chat looked like a failure.
    import shutil
    import socket

    if not shutil.which("make"):
        pytest.skip("make is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    venv = sys.prefix  # the venv running the tests stands for .venv; -o: never (re)install into it
    env = {**os.environ, "QA_INDEX_DIR": str(seed_settings.index_dir), "QA_CORPUS": str(SEEDS),
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    pid, master = pty.fork()  # a real controlling terminal: Ctrl-C becomes SIGINT for its foreground group
    if pid == 0:
        os.chdir(ROOT)
        os.execvpe("make", ["make", "-o", f"{venv}/bin/qa", "chat", f"VENV={venv}", f"PORT={port}"], env)
    term = Terminal.__new__(Terminal)
    term.master, term.raw = master, b""
    assert "Serving the chat on" in term.read_until(lambda text: "Serving the chat on" in text)
    time.sleep(1)
    term.send("\x03")
    term.read_until(lambda _: False, timeout=30)
    _, status = os.waitpid(pid, 0)
    os.close(master)
    assert os.waitstatus_to_exitcode(status) == 0, term.text
    assert "make: ***" not in term.text and "qa: interrupted" in term.text
