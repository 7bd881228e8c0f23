"""Does a premise support a sentence? The rules shared by the eval's judge and the generative answer's guard.

Supported when most of the sentence's content words appear in the premise (share set by the caller: the
eval reads it from eval/config.toml) and every number, date word and quoted string in it appears there
exactly, and it does not flip a negation. `missing_names` adds the guard's rule for names. Checked against
eval/data/judge_fixture.jsonl by `qa eval`.
"""

from __future__ import annotations

import re

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


def missing_names(premise: str, sentence: str) -> list[str]:
    """Capitalised words of the sentence (its first word aside) that the premise lacks: names it would add.

    A possessive counts as its name ("Whitworth's" is in a premise that says "Whitworth")."""
    sentence = strip_markers(sentence)
    premise_words = set(_low_words(premise))
    missing = []
    for i, match in enumerate(_CAPITALISED.finditer(sentence)):
        before = sentence[:match.start()].rstrip()
        if not before or before[-1] in ".!?:\"'\u201c\u2018(":
            continue  # a sentence's (or a quotation's) first word is capitalised anyway
        word = re.sub(r"['\u2019]s$", "", match.group()).lower().replace("'", "").replace("\u2019", "")
        if word in STOPWORDS or word == "i":
            continue
        if word not in premise_words and word.rstrip("s") not in premise_words:
            missing.append(match.group())
    return missing
