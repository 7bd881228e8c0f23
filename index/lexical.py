"""Words for lexical matching: tokenising, a light stemmer, and BM25 term statistics."""

from __future__ import annotations

import math
import re
from collections import Counter

STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves also s t ll re ve d m
did does said says say tell told according many much
""".split())

_WORD = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)*", re.UNICODE)


# Common irregular verb forms, so "met" matches "meet" and "told" matches "tell".
IRREGULAR = {
    "met": "meet", "went": "go", "gone": "go", "said": "say", "told": "tell", "took": "take", "taken": "take",
    "gave": "give", "given": "give", "left": "leave", "found": "find", "held": "hold", "brought": "bring",
    "made": "make", "began": "begin", "begun": "begin", "knew": "know", "known": "know", "thought": "think",
    "sent": "send", "paid": "pay", "sold": "sell", "ran": "run", "won": "win", "lost": "lose", "kept": "keep",
    "led": "lead", "fell": "fall", "fallen": "fall", "rose": "rise", "risen": "rise", "spoke": "speak",
    "spoken": "speak", "wrote": "write", "written": "write", "bought": "buy", "caught": "catch", "chose": "choose",
    "chosen": "choose", "drove": "drive", "driven": "drive", "ate": "eat", "eaten": "eat", "flew": "fly",
    "flown": "fly", "grew": "grow", "grown": "grow", "heard": "hear", "hid": "hide", "hidden": "hide",
    "saw": "see", "seen": "see", "stole": "steal", "stolen": "steal", "struck": "strike", "swore": "swear",
    "taught": "teach", "threw": "throw", "thrown": "throw", "understood": "understand", "woke": "wake",
    "wore": "wear", "worn": "wear", "fought": "fight", "felt": "feel", "built": "build", "dug": "dig",
}


def stem(word: str) -> str:
    """A deliberately light suffix stripper: killed/killing/kills -> kill, sentenced/sentence -> sentenc."""
    w = word.lower().replace("\u2019", "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.replace("'", "")
    w = IRREGULAR.get(w, w)
    if w.isdigit() or len(w) <= 3:
        return w
    for suffix, repl, min_len in (("ations", "at", 8), ("ation", "at", 7), ("ies", "y", 5), ("sses", "ss", 5),
                                  ("ing", "", 6), ("ed", "", 5), ("es", "", 5), ("s", "", 4)):
        if w.endswith(suffix) and len(w) >= min_len and not (suffix == "s" and w.endswith("ss")):
            w = w[: len(w) - len(suffix)] + repl
            break
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    return w


def words(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) for every word or number in text."""
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def terms(text: str) -> list[str]:
    """Stemmed content terms of text, stopwords removed, in order."""
    out = []
    for _, _, word in words(text):
        low = word.lower()
        if low in STOPWORDS:
            continue
        out.append(stem(low.replace(",", "")))
    return out


def term_counts(text: str) -> Counter:
    return Counter(terms(text))


BM25_K1, BM25_B = 1.2, 0.75  # the usual Okapi defaults


def bm25_idf(n_docs: int, df: int) -> float:
    """Okapi BM25 idf, kept positive for terms in more than half the chunks."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
