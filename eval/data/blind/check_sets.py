#!/usr/bin/env python3
"""Validate the blind evaluation sets (standard library only).

Usage: python3 check_sets.py [folder]   (default: the folder holding this script)

Checks, for every <corpus>.jsonl next to a <corpus>/ folder:
  * every line parses as a JSON object with the expected fields and types;
  * ids are unique (over all sets) and carry the set's prefix;
  * unanswerable items have answerable=false, no answers and no evidence;
    answerable items have 1+ answers and 1+ evidence quotes;
  * follow-up items have a non-empty history of [question, answer] pairs;
  * every evidence quote is an exact substring of its source document
    (raw text for .txt/.md; for .html the text with script/style/comments
    and tags removed and entities unescaped), contains no line break and,
    for .md/.html, no markup characters;
  * the answers appear (case-insensitively) in the document text near the
    evidence (within WINDOW characters around any evidence quote); with
    "all": true every answer must appear, otherwise at least one;
  * per set: 50-60 items, >= 15% unanswerable, >= 3 follow-ups,
    >= 10 paraphrase-type items; overall: >= 250 items.
Exit status 0 when everything passes, 1 otherwise.
"""
import html
import json
import os
import re
import sys
from collections import Counter

CORPORA = ["news", "plain", "markdown", "html", "report"]
TYPES = {"factoid", "numeric", "date", "paraphrase", "list", "multi-doc",
         "conflict", "follow-up", "unanswerable"}
FIELDS = {"id": str, "question": str, "answers": list, "all": bool,
          "answerable": bool, "evidence": list, "history": list,
          "type": str, "paraphrase": str}
WINDOW = 600
MARKUP_CHARS = set("#*`<>[]|")
ENTITY_RE = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")


def html_text(raw):
    t = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", "", raw)
    t = re.sub(r"(?s)<!--.*?-->", "", t)
    t = re.sub(r"(?s)<[A-Za-z/!?][^>]*>", "", t)
    return html.unescape(t)


def load_text(path):
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    if path.endswith((".html", ".htm")):
        return html_text(raw)
    return raw


def positions(text, quote):
    out, start = [], 0
    while True:
        i = text.find(quote, start)
        if i < 0:
            return out
        out.append(i)
        start = i + 1


def check_set(base, corpus, seen_ids, errors, warnings):
    path = os.path.join(base, corpus + ".jsonl")
    folder = os.path.join(base, corpus)
    texts = {}
    items = []
    if not os.path.isfile(path):
        errors.append(f"{corpus}: missing {path}")
        return items
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for ln, line in enumerate(lines, 1):
        where = f"{corpus}.jsonl:{ln}"
        if not line.strip():
            errors.append(f"{where}: blank line")
            continue
        try:
            it = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: JSON error {e}")
            continue
        if not isinstance(it, dict):
            errors.append(f"{where}: not an object")
            continue
        bad = False
        for k, typ in FIELDS.items():
            if k not in it:
                errors.append(f"{where}: missing field {k}")
                bad = True
            elif not isinstance(it[k], typ):
                errors.append(f"{where}: field {k} should be {typ.__name__}")
                bad = True
        extra = set(it) - set(FIELDS)
        if extra:
            warnings.append(f"{where}: extra fields {sorted(extra)}")
        if bad:
            continue
        items.append(it)
        iid = it["id"]
        where = f"{corpus}:{iid}"
        if iid in seen_ids:
            errors.append(f"{where}: duplicate id")
        seen_ids.add(iid)
        if not iid.startswith(corpus + "-"):
            errors.append(f"{where}: id lacks prefix {corpus}-")
        if it["type"] not in TYPES:
            errors.append(f"{where}: unknown type {it['type']}")
        if not it["question"].strip() or not it["paraphrase"].strip():
            errors.append(f"{where}: empty question or paraphrase")
        if it["paraphrase"].strip() == it["question"].strip():
            errors.append(f"{where}: paraphrase identical to question")
        for h in it["history"]:
            if not (isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) and x.strip() for x in h)):
                errors.append(f"{where}: history entries must be [question, answer]")
        if it["type"] == "follow-up" and not it["history"]:
            errors.append(f"{where}: follow-up without history")
        if it["type"] != "follow-up" and it["history"]:
            warnings.append(f"{where}: history on a non-follow-up item")
        unans = it["type"] == "unanswerable"
        if unans or not it["answerable"]:
            if not (unans and not it["answerable"] and not it["answers"] and not it["evidence"]):
                errors.append(f"{where}: unanswerable items need type=unanswerable, answerable=false, no answers/evidence")
            if it["all"]:
                errors.append(f"{where}: unanswerable item with all=true")
            continue
        if not it["answers"] or not all(isinstance(a, str) and a.strip() for a in it["answers"]):
            errors.append(f"{where}: answerable item needs non-empty answer strings")
            continue
        if not it["evidence"]:
            errors.append(f"{where}: answerable item without evidence")
            continue
        if it["type"] in ("list", "conflict") and not it["all"]:
            warnings.append(f"{where}: {it['type']} item with all=false")
        if it["type"] in ("multi-doc", "conflict"):
            srcs = {e.get("source") for e in it["evidence"] if isinstance(e, dict)}
            if it["type"] == "multi-doc" and len(srcs) < 2:
                errors.append(f"{where}: multi-doc item cites fewer than two documents")
        windows = []
        for e in it["evidence"]:
            if not (isinstance(e, dict) and isinstance(e.get("source"), str) and isinstance(e.get("quote"), str)):
                errors.append(f"{where}: evidence entries need source and quote strings")
                continue
            src, quote = e["source"], e["quote"]
            fpath = os.path.join(folder, src)
            if not os.path.isfile(fpath):
                errors.append(f"{where}: source {src} not found in {corpus}/")
                continue
            if src not in texts:
                texts[src] = load_text(fpath)
            text = texts[src]
            if "\n" in quote or "\r" in quote:
                errors.append(f"{where}: quote contains a line break")
            if quote != quote.strip():
                warnings.append(f"{where}: quote has leading/trailing whitespace")
            if src.endswith((".md", ".html", ".htm")):
                mk = sorted(set(quote) & MARKUP_CHARS)
                if mk or ENTITY_RE.search(quote):
                    errors.append(f"{where}: quote in {src} contains markup {mk or 'entity'}")
            nwords = len(quote.split())
            if nwords < 4 or nwords > 40:
                warnings.append(f"{where}: quote has {nwords} words")
            pos = positions(text, quote)
            if not pos:
                errors.append(f"{where}: quote not found in {src}: {quote!r}")
                continue
            for p in pos:
                windows.append(text[max(0, p - WINDOW): p + len(quote) + WINDOW].lower())
        if not windows:
            continue
        hay = "\n".join(windows)
        found = [a for a in it["answers"] if a.lower() in hay]
        if it["all"]:
            missing = [a for a in it["answers"] if a.lower() not in hay]
            if missing:
                errors.append(f"{where}: answers {missing} not found near the evidence")
        elif not found:
            errors.append(f"{where}: none of the answers {it['answers']} found near the evidence")
    return items


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    errors, warnings = [], []
    seen = set()
    total = 0
    all_types = Counter()
    for corpus in CORPORA:
        items = check_set(base, corpus, seen, errors, warnings)
        n = len(items)
        total += n
        types = Counter(it["type"] for it in items)
        all_types.update(types)
        unans = sum(1 for it in items if not it["answerable"])
        share = unans / n if n else 0.0
        print(f"{corpus:9s} items={n:3d} unanswerable={unans:2d} ({share:.0%}) "
              + " ".join(f"{k}={v}" for k, v in sorted(types.items())))
        if not 50 <= n <= 60:
            errors.append(f"{corpus}: {n} items (expected 50-60)")
        if share < 0.15:
            errors.append(f"{corpus}: unanswerable share {share:.1%} < 15%")
        if types["follow-up"] < 3:
            errors.append(f"{corpus}: only {types['follow-up']} follow-up items (need 3+)")
        if types["paraphrase"] < 10:
            errors.append(f"{corpus}: only {types['paraphrase']} paraphrase-type items (need 10+)")
    print(f"{'total':9s} items={total}  " + " ".join(f"{k}={v}" for k, v in sorted(all_types.items())))
    if total < 250:
        errors.append(f"only {total} items overall (need 250+)")
    for w in warnings:
        print("WARNING:", w)
    for e in errors:
        print("ERROR:", e)
    print("OK" if not errors else f"FAILED ({len(errors)} errors)")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
