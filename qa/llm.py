"""Generative backends, named by one option string everywhere (CLI --llm, REST `llm`, eval --llm, the chat):

    ollama:MODEL                 a model served by Ollama (OLLAMA_HOST, default http://127.0.0.1:11434)
    openai:BASE_URL:MODEL        any OpenAI-compatible server; key from QA_LLM_API_KEY (a placeholder when unset)
    gguf:PATH                    a local GGUF file through llama-cpp-python

Each is a LangChain chat model behind an optional extra (`pip install -e '.[llm]'`, `.[gguf]`); nothing
here is imported by the extractive default.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from index.errors import QAError, UsageError

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0
MAX_REPLY_TOKENS = 300  # a short answer of one to three sentences; the gguf models stop at 160
KINDS = ("ollama", "openai", "gguf")
_USAGE = "use ollama:MODEL, openai:BASE_URL:MODEL or gguf:PATH"


@dataclass(frozen=True)
class LLMSpec:
    kind: str
    model: str  # model name, or the GGUF path
    base_url: str = ""

    def __str__(self) -> str:
        return ":".join(x for x in (self.kind, self.base_url, self.model) if x)


def parse_spec(spec: str) -> LLMSpec:
    """The backend a spec names; UsageError (one line) for anything else."""
    kind, _, rest = (spec or "").strip().partition(":")
    if kind not in KINDS or not rest.strip() or _CONTROL.search(rest):
        raise UsageError(f"unknown LLM {spec!r}: {_USAGE}")
    if kind == "openai":
        base_url, _, model = rest.rpartition(":")
        port_as_model = re.fullmatch(r"https?://[^/:]+", base_url) and re.match(r"\d+(/|$)", model)
        if not re.match(r"https?://[^/\s]+", base_url) or not model or port_as_model or not _valid_url(base_url):
            raise UsageError(f"unknown LLM {spec!r}: openai needs a base URL and a model, "
                             "e.g. openai:http://127.0.0.1:8000/v1:my-model")
        return LLMSpec("openai", model, base_url)
    return LLMSpec(kind, rest)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _valid_url(url: str) -> bool:
    """A host, and a port that is a number when there is one ("http://h:abc/v1" failed in httpx, a traceback)."""
    try:
        parts = urlsplit(url)
        return bool(parts.hostname) and (parts.port is None or 0 < parts.port)
    except ValueError:
        return False


def check_api_key() -> None:
    """QA_LLM_API_KEY goes into a header: one with spaces, line breaks or non-ASCII failed as a 'connection error'."""
    key = os.environ.get("QA_LLM_API_KEY")
    if key and not re.fullmatch(r"[\x21-\x7e]+", key):
        raise UsageError("QA_LLM_API_KEY must be printable ASCII without spaces or line breaks")


def load_timeout(value: str | float | None = None) -> float:
    """Seconds to wait for the backend: the argument, else QA_LLM_TIMEOUT, else 60."""
    raw = value if value is not None else os.environ.get("QA_LLM_TIMEOUT")
    if raw in (None, ""):
        return DEFAULT_TIMEOUT_S
    try:
        timeout = float(raw)
    except ValueError:
        raise UsageError(f"QA_LLM_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not 0 < timeout <= MAX_TIMEOUT_S:  # nan and inf included: they failed every call, as a warning
        raise UsageError(f"QA_LLM_TIMEOUT must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {raw!r}")
    return timeout


def configured_specs(value: str | None = None) -> list[str]:
    """The backends a server offers: the argument or QA_LLM, comma-separated, each checked."""
    raw = value if value is not None else os.environ.get("QA_LLM", "")
    specs = [s.strip() for s in raw.split(",") if s.strip()]
    for s in specs:
        parsed = parse_spec(s)
        if parsed.kind == "gguf" and not os.path.isfile(parsed.model):  # not found per request, as a client's 404
            raise UsageError(f"no GGUF model at {parsed.model}")
    if specs:  # the server's settings are checked at its start, not reported to each client
        load_timeout()
        check_api_key()
    return specs


def _missing(extra: str, module: str) -> QAError:
    return QAError(f"{module} is not installed: install with pip install -e '.[{extra}]'")


def chat_model(spec: LLMSpec, timeout: float):
    """A LangChain chat model for the spec (temperature 0, no retries: a down backend fails within timeout)."""
    if spec.kind == "openai":
        try:
            from langchain_openai import ChatOpenAI
        except ModuleNotFoundError:
            raise _missing("llm", "langchain-openai") from None
        return ChatOpenAI(model=spec.model, base_url=spec.base_url, timeout=timeout, max_retries=0, temperature=0,
                          api_key=os.environ.get("QA_LLM_API_KEY") or "not-needed", max_tokens=MAX_REPLY_TOKENS)
    if spec.kind == "ollama":
        try:
            from langchain_ollama import ChatOllama
        except ModuleNotFoundError:
            raise _missing("llm", "langchain-ollama") from None
        return ChatOllama(model=spec.model, temperature=0, base_url=os.environ.get("OLLAMA_HOST") or None,
                          client_kwargs={"timeout": timeout}, num_predict=MAX_REPLY_TOKENS)
    try:
        from .llm_gguf import chat_model as gguf_chat_model
    except ModuleNotFoundError as exc:
        if exc.name == "llama_cpp":
            raise _missing("gguf", "llama-cpp-python") from None
        if exc.name == "qa.llm_gguf":
            raise QAError("the gguf backend is not part of this installation") from None
        raise
    return gguf_chat_model(spec.model)


class LLM:
    """A backend opened once and reused: its spec (as the Answer's `generator` names it) and chat model."""

    def __init__(self, spec: str, timeout: float | None = None):
        self.spec = parse_spec(spec)
        self.name = str(self.spec)
        self.timeout = load_timeout(timeout)
        if self.spec.kind == "openai":
            check_api_key()
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        """The chat model, made on first use (a GGUF loads here)."""
        with self._lock:
            if self._model is None:
                self._model = chat_model(self.spec, self.timeout)
            return self._model


_OPEN: dict[str, LLM] = {}
_OPEN_LOCK = threading.Lock()


def open_llm(spec: str, timeout: float | None = None) -> LLM:
    """The LLM for a spec, one per spec and timeout per process (a server reuses it for every question)."""
    key = f"{spec}\0{timeout}"
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = LLM(spec, timeout)
        return _OPEN[key]
