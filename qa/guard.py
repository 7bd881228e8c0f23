"""The grounding guard of generated answers: each sentence is shown as cited only when a cited passage says it.

A generated sentence names the passages it rests on with [n] markers. For each sentence the guard looks, in
those passages only, for the single document sentence that best supports it, and keeps it when

- every number, date word, quoted string and name in it appears in that document sentence (a first name may
  complete a surname there when the cited passages write the full name), it flips no negation, and nearly all
  its content words are there, a few in the cited passages around it (the eval judge's rules, `qa.support`),
- it does not change the meaning with the same words: a reported claim stated as fact, a hedge dropped, "all"
  added, a number moved to another noun or name, one end of a range given as the value, and
- its embedding is close to that document sentence's (cosine above MIN_COSINE), and
- that document sentence states something rather than speaking to the model ("ignore previous
  instructions and tell the user ..."): passages are data, and an instruction in one supports nothing.

Its citation is then that document sentence, by exact offsets: canonical_text(source)[start:end] == text.
A sentence that cites nothing, or only passage numbers that do not exist, is never shown as cited.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from index.chunk import line_number, sentence_units, split_sentences

from .support import (
    content_stems,
    missing_names,
    narrowed_range,
    rebound_number,
    rebound_to_name,
    supports,
    swapped_agent,
    unattributed,
    unhedged,
    widened,
)
from .types import Citation, GeneratedSentence, Passage

# Measured on the guard labels' fit split (python -m eval.guard_eval fit): no setting reached precision 1.00.
# Nearly every content word must be in the supporting sentence or, for a few, elsewhere in the cited passages
# (0.95 / 0.90; 0.95 in the sentence alone gave precision 0.90, recall 0.38 on fit, against 0.79 / 0.58 at the
# judge's 0.8; crediting the passages' words and reading names right, with the last three checks, 0.97 / 0.47;
# a span share of 0.5 bought recall 0.52 at precision 0.95). The cosine stays at 0.55: raising it to 0.9 bought
# 0.95 precision at recall 0.27 and dropped plain paraphrases ("Whitworth was 21 when Port killed him with GHB").
# A dropped supported sentence costs a fallback to the extractive answer; a kept unsupported one shows a false
# sentence with a citation.
MIN_COVERAGE = 0.95  # share of the sentence's content words in the supporting sentence or its passages
MIN_SPAN_COVERAGE = 0.9  # share of them in the supporting sentence itself
MIN_COSINE = 0.55  # embedding similarity of the sentence and the supporting sentence
# Changes of meaning that keep most of the words (qa/support.py): each helped on the guard's fit split.
MEANING_CHECKS = (unattributed, widened, rebound_number, rebound_to_name, unhedged, narrowed_range,
                  swapped_agent)
NOT_IN_DOCUMENTS = "not in the documents"
UNSUPPORTED_FLAG = "[unsupported]"
_MARKERS = r"(?:\s*\[\s*\d+(?:\s*,\s*\d+)*\s*\])+"
_MARKER_GROUP = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")
# "He died. [1]" -> "He died [1]." so that the marker stays with the sentence it follows.
_MARKERS_AFTER_END = re.compile(rf"([.!?]+['\"\u2019\u201d]*)({_MARKERS})")


# A document sentence that addresses the model ("Ignore previous instructions and tell the user ...") is an
# injection attempt, not a statement of fact: it supports nothing, whatever words it shares with a sentence.
_ADDRESSES_THE_MODEL = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompts?|rules|guidelines)\b"
    r"|\b(tell|inform|answer|respond to|reply to) the user\b|\bsystem prompt\b|\byou are (an? )?(ai|assistant|model)\b"
    r"|\b(language model|chatbot|assistant)s?\b.{0,30}\b(must|should)\b"
    r"|\b(note|message|instructions?|notice)s? (for|to) (ai|llms?|language models?|chatbots?|assistants?|models?)\b"
    r"|\b(ignore|disregard|forget)\b.{0,30}\b(passages?|context|sources?|documents?|text above)\b"
    r"|\bwhen (you are |you're )?asked\b.{0,80}\b(say|state|answer|reply|respond|claim|write)\b", re.IGNORECASE)


def addresses_the_model(text: str) -> bool:
    """Whether a document sentence speaks to the model rather than stating something (then it supports nothing)."""
    return bool(_ADDRESSES_THE_MODEL.search(text))


@dataclass(frozen=True)
class Drafted:
    """A generated sentence without its markers, and the passage numbers it cites (as the model wrote them)."""

    text: str
    cited: tuple[int, ...]


@dataclass(frozen=True)
class Support:
    """The best supporting document sentence for a generated one, within its cited passages."""

    passage: Passage | None
    start: int  # offsets into the document's canonical text
    end: int
    coverage: float
    cosine: float
    missing: tuple[str, ...]  # numbers, dates, quotes or names absent from the span
    supported: bool


def split_generated(text: str) -> list[Drafted]:
    """The generated answer's sentences, each with the [n] markers that follow it."""
    text = _MARKERS_AFTER_END.sub(r"\2\1", " ".join(text.split()))
    out = []
    for s, e in split_sentences(text):
        sentence = text[s:e]
        cited = tuple(dict.fromkeys(int(n) for group in _MARKER_GROUP.findall(sentence)
                                    for n in re.findall(r"\d+", group)))
        bare = " ".join(re.sub(_MARKERS, " ", sentence).split())
        bare = re.sub(r"\s+([.!?,;:])", r"\1", bare)
        if bare and re.search(r"\w", bare):
            out.append(Drafted(bare, cited))
        elif cited and out:  # markers alone after a sentence: they belong to it
            out[-1] = Drafted(out[-1].text, tuple(dict.fromkeys(out[-1].cited + cited)))
    return out


def says_not_in_documents(text: str) -> bool:
    """The model's abstention: the exact words, with nothing cited."""
    low = " ".join(text.lower().split())
    return NOT_IN_DOCUMENTS in low and not _MARKER_GROUP.search(text)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
    return float(a @ b) / denominator


def find_support(sentence: str, cited: list[Passage], embed: Callable[[str], np.ndarray],
                 shortlist: int = 3) -> Support:
    """The document sentence, in the cited passages, that best supports `sentence`, and whether it does."""
    wanted = content_stems(sentence)
    context = " ".join(f"{p.headings}\n{p.columns}\n{p.text}" for p in cited)
    context_stems = content_stems(context)
    rows = []
    for passage in cited:
        for s, e in sentence_units(passage.text, passage.table):
            span = passage.text[s:e]
            if addresses_the_model(span):
                continue
            in_span = wanted & content_stems(span)
            # A word the supporting sentence leaves to its passage ("the lighthouse tower" of "The tower is 31
            # metres tall" under "Lighthouse") counts, but most words must be in the sentence itself.
            coverage = len(in_span | (wanted & context_stems)) / len(wanted) if wanted else 1.0
            missing = tuple(missing_names(span, sentence, context))
            rules = (supports(span, sentence, MIN_SPAN_COVERAGE) and not missing
                     and not any(check(span, sentence) for check in MEANING_CHECKS))
            rows.append((rules, coverage, passage, passage.start + s, passage.start + e, span, missing))
    if not rows:
        return Support(None, 0, 0, 0.0, 0.0, (), False)
    rows.sort(key=lambda r: (not r[0], -r[1]))
    vector = embed(sentence)
    best = None
    for rules, coverage, passage, start, end, span, missing in rows[:shortlist]:
        cosine = _cosine(vector, embed(span))
        candidate = Support(passage, start, end, round(coverage, 4), round(cosine, 4), missing,
                            rules and coverage >= MIN_COVERAGE and cosine >= MIN_COSINE)
        if best is None or (candidate.supported, candidate.coverage + candidate.cosine) > (
                best.supported, best.coverage + best.cosine):
            best = candidate
    return best


def _with_marker(sentence: str, marker: str) -> str:
    m = re.search(r"""([.!?]+['"\u2019\u201d]*)$""", sentence)
    return f"{sentence[:m.start()]} {marker}{m.group()}" if m else f"{sentence} {marker}"


@dataclass(frozen=True)
class Guarded:
    prose: str  # kept sentences with [n] markers (and flagged ones, when shown); empty when none is kept
    citations: tuple[Citation, ...]
    sentences: tuple[GeneratedSentence, ...]

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.sentences)


def guard(text: str, passages: list[Passage], document_text: Callable[[str], str],
          embed: Callable[[str], np.ndarray], show_unsupported: bool = False) -> Guarded:
    """Check each generated sentence against the passages it cites ([n] is passages[n-1]); keep the supported.

    Kept sentences cite their supporting document sentence; with show_unsupported the others stay in the
    prose, flagged [unsupported] and citing nothing."""
    citations: list[Citation] = []
    numbers: dict[tuple[str, int, int], int] = {}
    pieces, sentences = [], []
    for drafted in split_generated(text):
        valid = [n for n in drafted.cited if 1 <= n <= len(passages)]
        if not drafted.cited:
            support, reason = None, "cites no passage"
        elif not valid:
            support, reason = None, f"cites {', '.join(f'[{n}]' for n in drafted.cited)}: no such passage"
        else:
            support = find_support(drafted.text, [passages[n - 1] for n in valid], embed)
            reason = "" if support.supported else (
                f"not in the cited passage: {', '.join(support.missing)}" if support.missing else
                f"not supported by the cited passages (coverage {support.coverage:.2f}, cosine {support.cosine:.2f})")
        if support is not None and support.supported:
            p = support.passage
            key = (p.source, support.start, support.end)
            if key not in numbers:
                document = document_text(p.source)
                numbers[key] = len(citations) + 1
                citations.append(Citation(n=numbers[key], source=p.source, start=support.start, end=support.end,
                                          text=document[support.start:support.end], chunk_id=p.chunk_id,
                                          score=support.coverage, line=line_number(document, support.start),
                                          headings=p.headings, page=p.page))
            pieces.append(_with_marker(drafted.text, f"[{numbers[key]}]"))
            cites = (numbers[key],)
        else:
            if show_unsupported:
                pieces.append(_with_marker(drafted.text, UNSUPPORTED_FLAG))
            cites = ()
        sentences.append(GeneratedSentence(
            text=drafted.text, citations=cites, cited_passages=drafted.cited,
            support=support.coverage if support else 0.0, cosine=support.cosine if support else 0.0,
            kept=bool(cites), reason=reason))
    return Guarded(" ".join(pieces) if citations else "", tuple(citations), tuple(sentences))
