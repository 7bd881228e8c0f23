"""CHROMA_HOST mode against a real `chroma run` server."""

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from index.build import build_index
from index.config import load_settings
from qa.engine import QA

from .conftest import SEEDS
from .test_server import _free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    chroma = shutil.which("chroma") or str(Path(__import__("sys").executable).parent / "chroma")
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-data")
    proc = subprocess.Popen([chroma, "run", "--path", str(data), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://localhost:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma run did not start")
    yield port
    proc.terminate()
    proc.wait(timeout=20)


def test_index_and_answer_through_a_chroma_server(chroma_server, tmp_path):
    settings = load_settings(corpus=SEEDS, index_dir=tmp_path / "index", chroma_host="localhost",
                             chroma_port=chroma_server)
    report = build_index(settings)
    assert report.chunks == 37
    assert not (tmp_path / "index" / "chroma").exists()  # vectors live in the server
    qa = QA(settings, build_if_missing=False, fast_start=True)  # fast start is off in server mode
    answer = qa.ask("Which drug killed Daniel Whitworth?")
    assert "GHB" in answer.answer
    assert all(p.dense is not None for p in answer.passages)


def test_unreachable_chroma_server_is_a_one_line_error(tmp_path):
    from index.errors import QAError

    settings = load_settings(corpus=SEEDS, index_dir=tmp_path / "index", chroma_host="localhost",
                             chroma_port=_free_port())
    with pytest.raises(QAError, match="Cannot open the Chroma store"):
        build_index(settings)
