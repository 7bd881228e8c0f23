"""Counts over the blind PDFs of the given splits (python bench/pdf_text_stats.py [train dev test], default train
dev; test for the final number only): the units the answerer reads and cites (index.chunk.sentence_units of each
chunk), the share that are fragments (< 4 words, or no letters), ligature characters, line-end hyphens, and the
most common first and last line of a page (digits as #). bench/results/pdf-reading.md."""
import collections
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from index.chunk import chunk_document, sentence_units  # noqa: E402
from index.formats import read_pdf  # noqa: E402
from index.load import Document  # noqa: E402

root = Path(__file__).resolve().parent.parent / "eval" / "data" / "blind2"
splits = sys.argv[1:] or ["train", "dev"]  # "test" for the final number only
files = sorted(f for split in splits for f in root.glob(f"pdf-{split}/*.pdf"))
tot = frag = lig = hyph = 0
for f in files:
    p = read_pdf(f.read_bytes())
    t = p.text
    chunks = chunk_document(Document(f.name, "", t, tuple(p.blocks)))
    units = [c.text[a:b] for c in chunks for a, b in sentence_units(c.text, c.table)]
    fr = [s for s in units if len(s.split()) < 4 or not re.search(r"[A-Za-z]", s)]
    tot += len(units)
    frag += len(fr)
    nl, nh = len(re.findall("[\ufb00-\ufb06]", t)), len(re.findall(r"[a-z]-\n[a-z]", t))
    lig += nl
    hyph += nh
    pages = collections.defaultdict(list)
    for blk in p.blocks:
        pages[blk.page].append(t[blk.start:blk.end])
    firsts = collections.Counter(re.sub(r"\d+", "#", v[0].splitlines()[0].strip()) for v in pages.values())
    lasts = collections.Counter(re.sub(r"\d+", "#", v[-1].splitlines()[-1].strip()) for v in pages.values())
    print(f"{f.name[:30]:30s} pages {len(pages):3d} units {len(units):4d} frag {len(fr) / max(len(units), 1):.2f} "
          f"lig {nl} hyph {nh} top-first {firsts.most_common(1)} top-last {lasts.most_common(1)}")
print(f"ALL units {tot} fragments {frag / tot:.3f} ligatures {lig} hyphen-breaks {hyph}")
