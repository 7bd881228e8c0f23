"""Counts over the train and dev blind PDFs: sentences, fragments (< 4 words or no letters), ligature characters,
line-end hyphens, and the most common first and last line of a page (digits as #). bench/results/pdf-reading.md."""
import sys, re, collections
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from index.formats import read_pdf
from index.chunk import split_sentences
root = Path(__file__).resolve().parent.parent / "eval" / "data" / "blind2"
files = sorted([*root.glob("pdf-train/*.pdf"), *root.glob("pdf-dev/*.pdf")])
tot = frag = lig = hyph = 0
for f in files:
    p = read_pdf(f.read_bytes())
    t = p.text
    sents = [t[a:b] for blk in p.blocks if blk.kind != "heading" for a, b in split_sentences(t, blk.start, blk.end)]
    fr = [s for s in sents if len(s.split()) < 4 or not re.search(r"[A-Za-z]", s)]
    tot += len(sents); frag += len(fr)
    lig += len(re.findall("[\ufb00-\ufb06]", t)); hyph += len(re.findall(r"[a-z]-\n[a-z]", t))
    # first/last line per page
    pages = collections.defaultdict(list)
    for blk in p.blocks: pages[blk.page].append(t[blk.start:blk.end])
    firsts = collections.Counter(re.sub(r"\d+", "#", v[0].splitlines()[0].strip()) for v in pages.values())
    lasts = collections.Counter(re.sub(r"\d+", "#", v[-1].splitlines()[-1].strip()) for v in pages.values())
    nl = len(re.findall("[\ufb00-\ufb06]", t)); nh = len(re.findall(r"[a-z]-\n[a-z]", t))
    print(f"{f.name[:30]:30s} pages {len(pages):3d} sents {len(sents):4d} frag {len(fr)/max(len(sents),1):.2f} lig {nl} hyph {nh} top-first {firsts.most_common(1)} top-last {lasts.most_common(1)}")
print(f"ALL sents {tot} fragments {frag/tot:.3f} ligatures {lig} hyphen-breaks {hyph}")
