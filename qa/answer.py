"""The extractive answerer: pick the sentences that answer, cite each exactly, or abstain.

Every answer sentence is a verbatim span of a document, so it is supported by
construction. What can go wrong is answering when the documents do not hold the fact;
similarity alone cannot tell (a near miss scores high), so a sentence qualifies only when
it covers the question's topic words and holds the kind of value the question asks for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from index.chunk import line_number, split_sentences
from index.lexical import terms

from .question import QuestionSpec, typed_values
from .types import Citation, Passage

# Calibrated on eval/data/calibration.jsonl (see README "Abstention"): not on the reference set.
MIN_COVERAGE = 0.6  # share of the question's topic weight a sentence must contain
MIN_COVERAGE_WITH_DENSE = 0.35  # ... or this much when the passage is semantically close
MIN_DENSE = 0.5
HEAD_WAIVER_COVERAGE = 0.75  # "Which relatives told the BBC ...": names answer it without the word "relatives"
MAX_SENTENCES = 3
KEEP_RATIO = 0.85  # further sentences must score this close to the best one
DONT_KNOW = "The documents don't say."


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    start: int  # document offsets
    end: int
    text: str
    coverage: float
    values: tuple[str, ...]  # values of the asked-for type in the sentence
    score: float
    has_head: bool = True  # the "which X" noun appears in the sentence or its passage
    dense: float = 0.0  # cosine similarity of the sentence to the question


def term_weights(spec: QuestionSpec, document_frequency, n_chunks: int) -> dict[tuple[str, ...], float]:
    """IDF weight per focus group; terms absent from the corpus weigh most (a near miss hinges on them).

    A name's words form one group, matched by any of them and weighted by the rarest.
    """
    n = max(n_chunks, 1)
    idf = {t: math.log(1 + (n + 0.5) / (document_frequency(t) + 0.5)) for t in spec.focus}
    return {group: max(idf[t] for t in group) for group in spec.groups()}


def _coverage(weights: dict[tuple[str, ...], float], sentence_terms: set[str], context_terms: set[str]) -> float:
    """Share of the question's topic weight present in the sentence (half credit if only in its passage)."""
    total = sum(weights.values())
    if not total:
        return 0.0
    got = 0.0
    for group, weight in weights.items():
        if any(t in sentence_terms for t in group):
            got += weight
        elif any(t in context_terms for t in group):
            got += 0.5 * weight
    return got / total


def candidates(spec: QuestionSpec, passages: list[Passage], weights: dict[str, float],
               question_vector: np.ndarray | None = None,
               sentence_vectors: dict[str, np.ndarray] | None = None) -> list[Candidate]:
    """Every sentence of the retrieved passages, scored against the question."""
    out = []
    sentence_vectors = sentence_vectors or {}
    for rank, passage in enumerate(passages):
        context = set(terms(passage.text))  # heading words here cost a near miss on the eval sets, gained nothing
        spans = split_sentences(passage.text)
        vectors = sentence_vectors.get(passage.chunk_id)
        if question_vector is not None and vectors is not None and len(vectors) == len(spans):
            dense_by_sentence = [float(v) for v in vectors @ question_vector]
        else:  # no sentence vectors: the passage's similarity stands in
            dense_by_sentence = [passage.dense or 0.0] * len(spans)
        for (s, e), dense in zip(spans, dense_by_sentence):
            text = passage.text[s:e]
            cov = _coverage(weights, set(terms(text)), context)
            values = tuple(typed_values(spec.answer_type, text, spec.text)) if spec.answer_type else ()
            score = cov + 0.5 * dense + (0.1 if values else 0.0) + 0.05 / (1 + rank)
            has_head = spec.head is None or spec.head in context
            out.append(Candidate(passage, passage.start + s, passage.start + e, text, cov, values, score, has_head,
                                 dense))
    return out


def qualifies(spec: QuestionSpec, c: Candidate) -> bool:
    """Does this sentence answer the question: topic covered and the asked-for kind of value present?"""
    if spec.answer_type and not c.values:
        return False
    if not c.has_head and c.coverage < HEAD_WAIVER_COVERAGE:
        return False
    return c.coverage >= MIN_COVERAGE or (c.coverage >= MIN_COVERAGE_WITH_DENSE and c.dense >= MIN_DENSE)


def select_evidence(spec: QuestionSpec, passages: list[Passage], weights: dict[str, float],
                    question_vector: np.ndarray | None = None,
                    sentence_vectors: dict[str, np.ndarray] | None = None) -> list[Candidate]:
    """The sentences to answer with, best first; empty means abstain."""
    pool = candidates(spec, passages, weights, question_vector, sentence_vectors)
    good = sorted((c for c in pool if qualifies(spec, c)), key=lambda c: -c.score)
    chosen: list[Candidate] = []
    seen_texts, seen_values = set(), set()
    for c in good:
        if len(chosen) == MAX_SENTENCES or (chosen and c.score < KEEP_RATIO * chosen[0].score):
            break
        key = re.sub(r"\W+", " ", c.text.lower()).strip()
        values = {v.lower() for v in c.values}
        if key in seen_texts:
            continue
        # A further sentence must add something: a value not yet given, or another source's account.
        if chosen and not (values - seen_values if spec.answer_type else
                           c.passage.source not in {x.passage.source for x in chosen}):
            continue
        seen_texts.add(key)
        seen_values |= values
        chosen.append(c)
    return chosen


def _with_marker(sentence: str, n: int) -> str:
    """Put the [n] marker before the sentence's closing punctuation."""
    m = re.search(r"""([.!?]+['"\u2019\u201d]*)$""", sentence)
    if m:
        return f"{sentence[:m.start()]} [{n}]{m.group()}"
    return f"{sentence} [{n}]"


def compose(chosen: list[Candidate], document_text) -> tuple[str, tuple[Citation, ...], bool]:
    """Answer prose with [n] markers, its citations, and whether the sources conflict."""
    ordered = sorted(chosen, key=lambda c: -c.score)
    citations = tuple(
        Citation(n=i, source=c.passage.source, start=c.start, end=c.end, text=c.text,
                 chunk_id=c.passage.chunk_id, score=round(c.score, 4),
                 line=line_number(document_text(c.passage.source), c.start), headings=c.passage.headings,
                 page=c.passage.page)
        for i, c in enumerate(ordered, start=1))
    prose = " ".join(_with_marker(c.text, i) for i, c in enumerate(ordered, start=1))
    values = [{v.lower() for v in c.values} for c in ordered if c.values]
    conflict = len(values) > 1 and any(v != values[0] for v in values[1:])
    return prose, citations, conflict
