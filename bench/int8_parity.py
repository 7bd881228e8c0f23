"""Issue 25's retrieval-parity rule for an int8 encoder: hit@5 and MRR on every train and dev set within 0.01 of fp32,
with the same encoder for index and query (int8-index-only: int8 index, fp32 questions).

Run: .venv/bin/python bench/int8_parity.py fp32|int8|int8-index-only OUTDIR   (then compare OUTDIR/report/latest.json;
bench/results/int8-parity.md)"""
import sys
from functools import lru_cache
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import onnxruntime as ort
import index.embed as E
import qa.retrieve as R

variant, out = sys.argv[1], sys.argv[2]
if variant.startswith("int8"):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Int8Encoder(E.OnnxEncoder):
        def __init__(self, path):
            super().__init__(path)
            q = E.onnx_export_path(path).with_name("model.int8.onnx")
            if not q.exists():
                quantize_dynamic(str(E.onnx_export_path(path)), str(q), weight_type=QuantType.QInt8)
            o = ort.SessionOptions()
            o.intra_op_num_threads = o.inter_op_num_threads = 1
            self.session = ort.InferenceSession(str(q), o, providers=["CPUExecutionProvider"])

    index_encoder = lru_cache(maxsize=2)(lambda path: Int8Encoder(path))
    E.load_index_encoder = index_encoder
    if variant == "int8":
        @lru_cache(maxsize=4096)
        def embed_query(path, text):
            return index_encoder(path).encode([text])[0]
        E.embed_query = embed_query
        R.embed_query = embed_query

from eval.run import main  # noqa: E402 (after the patches above, which it must see)
from index.config import load_settings  # noqa: E402
settings = load_settings(index_dir=Path(out) / "ix")
sys.exit(main(settings, baselines=False, out=str(Path(out) / "report"), splits=("train", "dev")))
