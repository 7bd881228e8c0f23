"""Issue 23's retrieval measure on the blind PDF sets: the share of answerable questions whose evidence is in the
top 10 passages (ours, hybrid), and whose answer string is. Usage: python bench/pdf_top10.py [train dev test]
(default train dev; the test split is for the final number only). Each set gets a fresh index under /tmp."""
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eval.metrics import covers, evidence_spans, load_set  # noqa: E402
from index.build import build_index  # noqa: E402
from index.config import load_settings  # noqa: E402
from qa.engine import QA  # noqa: E402

K = 10
config = tomllib.loads((ROOT / "eval" / "config.toml").read_text())["sets"]
for split in sys.argv[1:] or ["train", "dev"]:
    spec = config[f"pdf-{split}"]
    data = ROOT / "eval" / "data"
    items = [i for i in load_set(data / spec["file"]) if i.answerable]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings().with_(corpus=data / spec["corpus"], index_dir=Path(tmp))
        build_index(settings, settings.corpus)
        qa = QA(settings, build_if_missing=False)
        texts = {s: qa.index.document_text(s) for s in qa.index.sources()}
        found = said = 0
        for item in items:
            passages = qa.retrieve(item.question, k=K)
            spans = evidence_spans(item, texts, spec.get("exact_quotes", True))
            found += any(covers(p.source, p.start, p.end, sp) for p in passages for sp in spans)
            said += any(" ".join(a.lower().split()) in " ".join(p.text.lower().split())
                        for p in passages for a in item.answers)
    print(f"pdf-{split}: {len(items)} answerable; evidence in top {K}: {found / len(items):.3f}; "
          f"answer string in top {K}: {said / len(items):.3f}")
