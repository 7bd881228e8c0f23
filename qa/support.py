"""Does a premise support a sentence? The rules shared by the eval's judge and the generative answer's guard.

Supported when most of the sentence's content words appear in the premise (share set by the caller: the
eval reads it from eval/config.toml) and every number, date word and quoted string in it appears there
exactly, and it does not flip a negation. `missing_names` adds the guard's rule for names. Checked against
eval/data/judge_fixture.jsonl by `qa eval`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from index.lexical import STOPWORDS, stem, words

DEFAULT_THRESHOLD = 0.8
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201d]{3,})[\"\u201d]")
_MARKER = re.compile(r"\s*\[\d+\]")
_NEGATIONS = {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "didnt", "hasnt",
              "wasnt", "isnt", "dont", "doesnt", "cannot", "cant", "wont"}
_NUMBER_WORDS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                 "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion"}
_DATE_WORDS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
               "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}


def strip_markers(sentence: str) -> str:
    return _MARKER.sub("", sentence).strip()


def _low_words(text: str) -> list[str]:
    return [w.lower().replace("'", "").replace("\u2019", "") for _, _, w in words(text)]


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in _low_words(text) if w not in STOPWORDS}


def supports(premise: str, sentence: str, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """True when the premise supports the sentence by the rules above."""
    sentence = strip_markers(sentence)
    norm_premise = " ".join(premise.split())
    for number in _NUMBER.findall(sentence):
        if not re.search(rf"(?<![\d,.]){re.escape(number)}(?![\d]|[,.]\d)", norm_premise):
            return False
    for quoted in _QUOTED.findall(sentence):
        if " ".join(quoted.split()) not in norm_premise:
            return False
    premise_words = set(_low_words(premise))
    sentence_words = set(_low_words(sentence))
    if any(w in premise_words for w in _DATE_WORDS) or any(w in sentence_words for w in _DATE_WORDS):
        if (sentence_words & _DATE_WORDS) - premise_words:
            return False
    if (sentence_words & _NUMBER_WORDS) - premise_words:  # number words count as numbers
        return False
    if bool(sentence_words & _NEGATIONS) != bool(premise_words & _NEGATIONS) and sentence_words & _NEGATIONS:
        return False
    wanted = content_stems(sentence)
    if not wanted:
        return True
    return len(wanted & content_stems(premise)) / len(wanted) >= threshold


_CAPITALISED = re.compile(r"[A-Z][\w'\u2019-]*")


def _name_word(token: str) -> str:
    return re.sub(r"['\u2019]s$", "", token).lower().replace("'", "").replace("\u2019", "")


def _name_pairs(sentence: str, tokens: list[re.Match], i: int) -> list[tuple[str, str]]:
    """The capitalised word tokens[i] with the one just before it and the one just after it (only a space between):
    the two-word names it may be part of."""
    pairs = []
    for a, b in ((i - 1, i), (i, i + 1)):
        if a >= 0 and b < len(tokens) and not sentence[tokens[a].end():tokens[b].start()].strip():
            pairs.append((_name_word(tokens[a].group()), _name_word(tokens[b].group())))
    return pairs


@lru_cache(maxsize=16)
def _context_words(context: str) -> str:
    """The context's words, lowercased and space-joined: read only for a name a premise lacks, and once for all
    the premises of one context (the guard tries every sentence of the cited passages against it)."""
    return " ".join(_low_words(context))


def missing_names(premise: str, sentence: str, context: str = "") -> list[str]:
    """Capitalised words of the sentence (its first word aside) that the premise lacks: names it would add.

    A possessive counts as its name ("Whitworth's" is in a premise that says "Whitworth"). With a context
    (the passages the premise comes from), a word that completes a name the premise does hold is not missing
    when the context writes the full name: "Daniel Whitworth, 21" of "Mr Whitworth, 21" where the passage
    names Daniel Whitworth."""
    sentence = strip_markers(sentence)
    premise_words = set(_low_words(premise))
    tokens = list(_CAPITALISED.finditer(sentence))
    missing = []
    for i, match in enumerate(tokens):
        before = sentence[:match.start()].rstrip()
        if not before or before[-1] in ".!?:\"'\u201c\u2018(":
            continue  # a sentence's (or a quotation's) first word is capitalised anyway
        word = _name_word(match.group())
        # "Port's" is in "Port's flat" (read as "ports"), "GHB-related" in "GHB-related deaths" ("ghb", "related")
        parts = [w for w in word.split("-") if w]
        if word in STOPWORDS or word == "i" or all(w in premise_words or w.rstrip("s") in premise_words
                                                  or f"{w}s" in premise_words for w in parts):
            continue
        if not any(f"{a} {b}" in _context_words(context) and (a if b == word else b) in premise_words
                   for a, b in _name_pairs(sentence, tokens, i)):
            missing.append(match.group())
    return missing


# What a sentence may not do to its supporting sentence even when it keeps most of its words (the guard's rules;
# the eval judge reads verbatim spans, where none of this can happen). Each was added for a kind of error seen in
# the fit split of the guard labels (eval/data/guard-splits/fit.jsonl) and kept only when the fit split showed it
# help: see README "The guard".
_REPORTING = re.compile(r"\b(said|says|say|saying|told|tells|allege[sd]?|alleging|claim(s|ed)?|according|believe[sd]?|"
                        r"argue[sd]?|insist(s|ed)?|accuse[sd]?|described|feel|felt|view|concerned)\b", re.IGNORECASE)
_QUOTE_MARKS = re.compile(r"[\"\u201c\u201d]")
_QUANTIFIERS = {"all", "every", "always", "any", "only", "entire", "each", "everyone", "everything"}
_NUMBER_THEN_WORD = re.compile(r"(?<![\d,.])(\d[\d,.]*)\s+([a-z]{3,})")


def unattributed(premise: str, sentence: str) -> bool:
    """The premise reports what someone said, claimed or believes; the sentence states it as fact."""
    reported = _REPORTING.search(premise) or _QUOTE_MARKS.search(premise)
    return bool(reported) and not (_REPORTING.search(sentence) or _QUOTE_MARKS.search(sentence))


def widened(premise: str, sentence: str) -> bool:
    """The sentence says all / every / always / only where the premise does not."""
    return bool((set(_low_words(sentence)) & _QUANTIFIERS) - set(_low_words(premise)))


def rebound_number(premise: str, sentence: str) -> bool:
    """A number of the sentence is attached to a word that the premise attaches to another number
    ("18 metres tall" of a premise that says "31 metres tall ... 18 nautical miles")."""
    low_premise = " ".join(premise.lower().split())
    for number, word in _NUMBER_THEN_WORD.findall(sentence.lower()):
        if word in STOPWORDS or f"{number} {word}" in low_premise:
            continue
        if re.search(rf"(?<![\d,.])\d[\d,.]*\s+{re.escape(word)}\b", low_premise):
            return True
    return False


_NAME_THEN_NUMBER = re.compile(r"([A-Z][\w'\u2019-]+(?:\s+[A-Z][\w'\u2019-]+)*),\s+(\d[\d,.]*\d|\d)\b")


def rebound_to_name(premise: str, sentence: str) -> bool:
    """A number the premise gives one name ("Gabriel Kovari, 22") stated of another name it gives a different
    number ("Jack Taylor was 22" of "... Gabriel Kovari, 22, and Jack Taylor, 25")."""
    owners = {m.group(2): m.group(1).split()[-1].lower() for m in _NAME_THEN_NUMBER.finditer(premise)}
    if len(owners) < 2:
        return False
    low = set(_low_words(sentence))
    for number in set(_NUMBER.findall(strip_markers(sentence))) & owners.keys():
        if owners[number] not in low and any(name in low for n, name in owners.items() if n != number):
            return True
    return False


_HEDGES = {"perceived", "alleged", "allegedly", "apparently", "reportedly", "possibly", "probably", "suspected",
           "likely", "unlikely", "may", "might", "could", "seemingly", "presumably", "purported", "purportedly"}


def unhedged(premise: str, sentence: str) -> bool:
    """The premise hedges ("perceived failures", "apparently took") and the sentence states it without any hedge."""
    return bool(set(_low_words(premise)) & _HEDGES) and not set(_low_words(sentence)) & _HEDGES


_RANGE = re.compile(r"\b(?:between|from)\s+([^,;]{1,40}?)\s+(?:and|to|until)\s+([^,;]{1,40})", re.IGNORECASE)


def narrowed_range(premise: str, sentence: str) -> bool:
    """The premise gives a range ("between June 2014 and September 2015") and the sentence keeps one end of it
    as if it were the value ("killed in June 2014")."""
    said = set(_NUMBER.findall(strip_markers(sentence)))
    for low, high in _RANGE.findall(premise):
        ends = set(_NUMBER.findall(low)), set(_NUMBER.findall(high))
        if all(ends) and bool(said & ends[0]) != bool(said & ends[1]):
            return True
    return False


_BY_AGENT = re.compile(r"\bby\s+(?:(?:Mr|Mrs|Ms|Dr)\.?\s+)?([A-Z][\w'\u2019-]+)")


def swapped_agent(premise: str, sentence: str) -> bool:
    """The sentence says who did it ("killed by Mr Whitworth") naming someone the premise names, but not as the
    one by whom it was done ("Mr Whitworth, 21, was killed by Port"): the same words, the roles swapped."""
    said = {m.group(1).lower() for m in _BY_AGENT.finditer(sentence)}
    done_by = {m.group(1).lower() for m in _BY_AGENT.finditer(premise)}
    return bool(said and done_by) and not said & done_by and bool(said & set(_low_words(premise)))
