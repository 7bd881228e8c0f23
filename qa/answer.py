"""The extractive answerer: pick the sentences that answer, cite each exactly, or abstain.

Every answer sentence is a verbatim span of a document, so it is supported by
construction. What can go wrong is answering when the documents do not hold the fact;
similarity alone cannot tell (a near miss scores high), so a sentence qualifies only when
it covers the question's topic words and holds the kind of value the question asks for.

With the reader (qa/reader.py, docs/reader.md) a cross-encoder picks the sentence and a model fitted on its
scores decides whether to answer; the features and rules here are its inputs, and its fallback.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.chunk import line_number, reads_as_rows, sentence_units, split_sentences, table_row_text
from index.lexical import terms

from .question import SOFT_KINDS, QuestionSpec, kinds_in, soft_kinds, typed_values
from .types import Citation, Passage

# Calibrated on eval/data/calibration.jsonl (see README "Abstention"): not on the reference set.
MIN_COVERAGE = 0.6  # share of the question's topic weight a sentence must contain
MIN_COVERAGE_WITH_DENSE = 0.35  # ... or this much when the passage is semantically close
MIN_DENSE = 0.5
HEAD_WAIVER_COVERAGE = 0.75  # "Which relatives told the BBC ...": names answer it without the word "relatives"
MAX_SENTENCES = 3
KEEP_RATIO = 0.85  # further sentences must score this close to the best one
DONT_KNOW = "The documents don't say."
SELECTOR_FILE = Path(__file__).with_name("selector.json")


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
    features: tuple[float, ...] = ()  # SELECTOR_FEATURES, for the fitted selector


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


# What the fitted selector sees of each sentence: measures that survive paraphrase (similarity,
# topic coverage weighted by rarity, the kind of value asked for, the names the question mentions),
# not the question's wording.
SELECTOR_FEATURES = ("cos", "cos_gap", "cos_rank", "passage_dense", "passage_lexical", "passage_rank", "coverage",
                     "coverage_sentence", "neighbour_coverage", "type_asked", "type_match", "names_sentence",
                     "names_context", "head", "log_length", "pronoun_start", "pool_coverage", "pool_missing",
                     "type_missing", "rules_qualify", "novelty", "heading_coverage", "kind_match_any",
                     "neighbour_kind_match") + tuple(f"asked_{k}" for k in SOFT_KINDS) + tuple(
                         f"match_{k}" for k in SOFT_KINDS)
_PRONOUN_START = re.compile(r"^\W*(he|she|it|they|this|these|those|his|her|their|its)\b", re.I)


def _names_share(names: tuple[str, ...], text: str) -> float:
    """Share of the question's names whose last word occurs in text (1.0 when it names nothing)."""
    if not names:
        return 1.0
    low = text.lower()
    return sum(name.split()[-1].lower() in low for name in names) / len(names)


def _previous_sentence_start(document: str, offset: int) -> int | None:
    """Where the sentence before document[offset:] starts (in the paragraph above, when it is the first of its own)."""
    window = max(0, offset - 1000)
    spans = split_sentences(document, window, offset)
    return spans[-1][0] if spans and (window == 0 or spans[-1][0] > window) else None


def candidates(spec: QuestionSpec, passages: list[Passage], weights: dict[str, float],
               question_vector: np.ndarray | None = None,
               sentence_vectors: dict[str, np.ndarray] | None = None, document_text=None) -> list[Candidate]:
    """Every sentence of the retrieved passages, scored against the question, with its selector features.

    A sentence that opens with a pronoun ("He and ...") is taken with the sentence before it, from the
    passage or, for a passage's first sentence, from the document (document_text(source)); without
    document_text such a sentence keeps its pronoun and does not qualify."""
    rows = []
    sentence_vectors = sentence_vectors or {}
    max_lexical = max((p.lexical or 0.0 for p in passages), default=0.0) or 1.0
    asked = soft_kinds(spec.text)
    question_terms = {t for group in weights for t in group}
    for rank, passage in enumerate(passages):
        context = set(terms(f"{passage.columns}\n{passage.text}"))
        spans = sentence_units(passage.text, passage.table)
        vectors = sentence_vectors.get(passage.chunk_id)
        if question_vector is not None and vectors is not None and len(vectors) == len(spans):
            dense_by_sentence = [float(v) for v in vectors @ question_vector]
        else:  # no sentence vectors: the passage's similarity stands in
            dense_by_sentence = [passage.dense or 0.0] * len(spans)
        sentence_terms = [set(terms(passage.text[s:e])) for s, e in spans]
        own = [_coverage(weights, t, set()) for t in sentence_terms]
        # Which asked-for kinds of value each sentence holds (the answer may sit next to the sentence that
        # restates the question), and how much of the topic the passage's headings carry.
        matches = [tuple(a * h for a, h in zip(asked, kinds_in(passage.text[s:e], spec.text))) for s, e in spans]
        heading_coverage = _coverage(weights, set(terms(passage.headings or "")), set())
        names_context = _names_share(spec.names, f"{passage.headings}\n{passage.text}")
        for i, ((s, e), dense) in enumerate(zip(spans, dense_by_sentence)):
            doc_start, text, sentence_context = passage.start + s, passage.text[s:e], context
            if _PRONOUN_START.match(text):
                # "He and ..." is not an answer on its own: it brings the sentence its pronoun points back to.
                # That sentence is context (half credit), as the rest of the passage is: it says who "he" is,
                # not more of the answer.
                if i > 0:
                    doc_start, text = passage.start + spans[i - 1][0], passage.text[spans[i - 1][0]:e]
                elif document_text is not None:
                    document = document_text(passage.source)
                    before = _previous_sentence_start(document, passage.start + s)
                    if before is not None:
                        doc_start, text = before, document[before:passage.start + e]
                        sentence_context = context | set(terms(document[before:passage.start + s]))
            cov = _coverage(weights, sentence_terms[i], sentence_context)
            values = tuple(typed_values(spec.answer_type, text, spec.text)) if spec.answer_type else ()
            score = cov + 0.5 * dense + (0.1 if values else 0.0) + 0.05 / (1 + rank)
            has_head = spec.head is None or spec.head in context
            neighbours = [own[j] for j in (i - 1, i + 1) if 0 <= j < len(spans)]
            features = [dense, 0.0, 0.0, passage.dense or 0.0, (passage.lexical or 0.0) / max_lexical, 1 / (1 + rank),
                        cov, own[i], max(neighbours, default=0.0), float(bool(spec.answer_type)), float(bool(values)),
                        _names_share(spec.names, text), names_context, float(has_head), math.log1p(len(text)) / 6,
                        float(bool(_PRONOUN_START.match(text)))]
            # matches[i] is this sentence's; a pronoun's antecedent, brought in above, is read as well
            kind_match = matches[i] if text == passage.text[s:e] else tuple(
                a * h for a, h in zip(asked, kinds_in(text, spec.text)))
            novel = sentence_terms[i] - question_terms
            extra = [len(novel) / max(len(sentence_terms[i]), 1), heading_coverage, max(kind_match, default=0.0),
                     max((max(matches[j]) for j in (i - 1, i + 1) if 0 <= j < len(spans)), default=0.0)]
            extra += list(asked) + list(kind_match)
            rows.append([passage, doc_start, passage.start + e, text, cov, values, score, has_head, dense,
                         features, extra])
    by_cos = sorted(range(len(rows)), key=lambda r: -rows[r][8])
    best = rows[by_cos[0]][8] if rows else 0.0
    # Question-level: how well the best sentence covers the topic, and how much of the topic's weight no
    # retrieved passage mentions at all (a near miss: on topic, but the asked-for thing is absent).
    pool_coverage = max((row[4] for row in rows), default=0.0)
    everywhere = set().union(*(set(terms(f"{p.headings} {p.text}")) for p in passages)) if passages else set()
    pool_missing = 1.0 - _coverage(weights, everywhere, set()) if weights else 0.0
    for position, r in enumerate(by_cos):
        rows[r][9][1] = rows[r][8] - best
        rows[r][9][2] = 1 / (1 + position)
        rows[r][9] += [pool_coverage, pool_missing]
    out = [(Candidate(*row[:9], features=tuple(row[9])), row[10]) for row in rows]
    # The hand-set rules' verdict is one more feature: the fit decides how far to trust it.
    return [replace(c, features=c.features + (float(bool(spec.answer_type) and not c.values),
                                              float(qualifies(spec, c))) + tuple(extra)) for c, extra in out]


def absent_names(spec: QuestionSpec, document_frequency) -> list[str]:
    """Names in the question of which no word occurs anywhere in the corpus: the documents cannot be about them."""
    return [name for name in spec.names
            if (name_terms := terms(name)) and not any(document_frequency(t) for t in name_terms)]


@lru_cache(maxsize=1)
def load_selector() -> dict | None:
    """The fitted sentence selector when installed as qa/selector.json, else None: the hand-set rules decide.

    eval/fit.py writes a candidate to eval/reports/selector.json with its dev scores; it is installed only
    when it beats the rules there (so far it does not: see README "Grounding eval")."""
    try:
        model = json.loads(SELECTOR_FILE.read_text())
    except (OSError, ValueError):
        return None
    return model if tuple(model.get("features", ())) == SELECTOR_FEATURES else None


def selector_probability(model: dict, features: tuple[float, ...]) -> float:
    z = (np.asarray(features) - np.asarray(model["mean"])) / np.asarray(model["std"])
    return float(1 / (1 + math.exp(-(float(z @ np.asarray(model["weights"])) + model["bias"]))))


def selector_keeps(model: dict, spec: QuestionSpec, c: Candidate) -> bool:
    """A sentence may answer when the selector is confident of it (threshold chosen on the dev split by
    eval/fit.py) or it passes the hand rules' checks; the answer takes the kept sentences it scores highest.
    Either test alone did worse on dev: the rules decline most reworded questions, and the selector alone
    answers most near misses."""
    return c.score >= model["threshold"] or qualifies(spec, c)


def qualifies(spec: QuestionSpec, c: Candidate) -> bool:
    """Does this sentence answer the question: topic covered and the asked-for kind of value present?"""
    if spec.answer_type and not c.values:
        return False
    if not c.has_head and c.coverage < HEAD_WAIVER_COVERAGE:
        return False
    if _PRONOUN_START.match(c.text):
        return False  # its antecedent is in another passage: unclear who or what it is about
    return c.coverage >= MIN_COVERAGE or (c.coverage >= MIN_COVERAGE_WITH_DENSE and c.dense >= MIN_DENSE)


READER_SELECTOR_FILE = Path(__file__).with_name("reader.json")
# What the reader-fitted abstention sees of a question part's best sentence: the reader's logit for it alone and read
# with the next sentence, the margin of the reader's best over its second, and any of SELECTOR_FEATURES.
READER_FEATURES = ("reader", "reader_pair", "reader_margin")
READ_CANDIDATES = 15  # sentences the reader scores per question part, the best by the cheap score (chosen on dev)
READ_PAIRS = 2  # of those, the reader's best few are read again with the sentence after them
# The reader reads the cheap score's best READ_FIRST first and the rest only when none of those reads as a sure
# answer (logit >= SURE_LOGIT). With READ_PAIRS 2 (was 3) this cut the eval's answer p50 on dev 126 -> 90 ms,
# truthfulness 0.355 -> 0.364 there and 0.376 -> 0.364 on train (docs/reader.md, "Fewer reads").
READ_FIRST = 6
SURE_LOGIT = 4.0


@lru_cache(maxsize=1)
def load_reader_selector() -> dict | None:
    """The selector fitted on the reader's scores (qa/reader.json, written by eval/fit.py --reader), else None."""
    try:
        model = json.loads(READER_SELECTOR_FILE.read_text())
    except (OSError, ValueError):
        return None
    known = set(READER_FEATURES) | set(SELECTOR_FEATURES)
    return model if set(model.get("features", ())) <= known else None


_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_NON_SPACE = re.compile(r"\S")
MAX_PAIR_CHARS = 600  # a longer "next sentence" (a long list) is not read as part of the answer


def next_sentence_end(document: str, end: int) -> int | None:
    """Where the sentence after document[:end] ends: the next of its paragraph, or the first of the next paragraph
    (a list after "There are three kinds of triggers:" is one block); None past MAX_PAIR_CHARS or the end."""
    first = _NON_SPACE.search(document, end, end + MAX_PAIR_CHARS)
    if not first:
        return None
    blank = _BLANK_LINE.search(document, first.start(), end + MAX_PAIR_CHARS)
    spans = split_sentences(document, first.start(), blank.start() if blank else min(len(document),
                                                                                       end + MAX_PAIR_CHARS))
    return spans[0][1] if spans and spans[0][1] - end <= MAX_PAIR_CHARS else None


def reader_input(c: Candidate, text: str) -> str:
    """What the reader reads of a sentence: its heading path, then the sentence. On dev (first wording, the
    reader's top sentence) this was right 0.63 of the time, the sentence alone 0.57, with its neighbours 0.50.
    A table row is read with its column names ("Height: 38 metres"), which the row itself does not repeat."""
    if c.passage.columns and "\n" not in text:
        text = table_row_text(text, c.passage.columns)
    return f"{c.passage.headings}\n{text}" if c.passage.headings else text


def read(spec: QuestionSpec, pool: list[Candidate], document_text) -> list[tuple[Candidate, dict]]:
    """The cheap score's best READ_CANDIDATES sentences with the reader's features, best read first (only the
    best READ_FIRST when one of them reads as a sure answer).

    The reader's best READ_PAIRS are read again with the sentence after them in their document (see
    next_sentence_end); "pair_end" and "pair_text" are where that pair ends and its text (see with_pair)."""
    from .reader import get_reader

    reader = get_reader()
    ranked = sorted(pool, key=lambda c: -c.score)[:READ_CANDIDATES]
    texts = [reader_input(c, c.text) for c in ranked]
    logits = reader.scores(spec.text, texts[:READ_FIRST])
    if len(texts) > READ_FIRST and max(logits) < SURE_LOGIT:
        logits += reader.scores(spec.text, texts[READ_FIRST:])
    ranked = ranked[:len(logits)]
    order = sorted(range(len(ranked)), key=lambda i: -logits[i])
    pair_logits, pairs = read_pairs(reader, spec, [ranked[i] for i in order[:READ_PAIRS]], document_text)
    best = logits[order[0]] if order else 0.0
    margin = best - (logits[order[1]] if len(order) > 1 else -12.0)
    out = []
    for i in order:
        c, key = ranked[i], (ranked[i].passage.source, ranked[i].start, ranked[i].end)
        end = pairs.get(key, c.end)
        out.append((c, {"reader": logits[i], "reader_margin": margin,
                        "reader_pair": max(pair_logits.get(key, logits[i]), logits[i]), "pair_end": end,
                        "pair_text": document_text(c.passage.source)[c.start:end] if key in pairs else c.text}))
    return out


def read_pairs(reader, spec: QuestionSpec, best: list[Candidate], document_text) -> tuple[dict, dict]:
    """The reader's logit for each of these sentences read with the next one, and where that pair ends, by
    (source, start, end); none without document_text."""
    ends = {}
    # A table row is read alone: the "sentence" after it is the rest of the table.
    for c in best if document_text is not None else ():
        if reads_as_rows(c.passage.text, c.passage.table):
            continue
        end = next_sentence_end(document_text(c.passage.source), c.end)
        if end is not None:
            ends[(c.passage.source, c.start, c.end)] = end
    texts = [reader_input(c, document_text(c.passage.source)[c.start:ends[key]])
             for c in best if (key := (c.passage.source, c.start, c.end)) in ends]
    return dict(zip(ends, reader.scores(spec.text, texts))), ends


def with_pair(spec: QuestionSpec, c: Candidate, extra: dict) -> Candidate:
    """The sentence, or, when the reader scores it higher read with the next one ("There are three kinds of
    triggers:" and the list), the two: the answer cites both, as one exact span of the document."""
    if extra["reader_pair"] <= extra["reader"]:
        return c
    end, text = extra["pair_end"], extra["pair_text"]
    values = tuple(typed_values(spec.answer_type, text, spec.text)) if spec.answer_type else ()
    return replace(c, end=end, text=text, values=values)


def reader_answers(model: dict, spec: QuestionSpec, read_pool: list[tuple[Candidate, dict]]) -> list[Candidate]:
    """The reader picks, the fitted model decides whether to answer: the sentence the reader scores highest (with
    the next one when it prefers the pair) answers when the model's probability that it does reaches the threshold
    chosen on dev. Further sentences follow as distinct_sentences allows (another source's value: a conflict)."""
    if not read_pool:
        return []
    c, extra = max(read_pool, key=lambda r: r[1]["reader_pair"])
    named = dict(zip(SELECTOR_FEATURES, c.features)) | extra
    if selector_probability(model, tuple(named[f] for f in model["features"])) < model["threshold"]:
        return []
    scored = [replace(with_pair(spec, c, e), score=1 / (1 + math.exp(-e["reader_pair"]))) for c, e in read_pool]
    return distinct_sentences(spec, sorted(scored, key=lambda c: -c.score))


def select_evidence(spec: QuestionSpec, passages: list[Passage], weights: dict[str, float],
                    question_vector: np.ndarray | None = None,
                    sentence_vectors: dict[str, np.ndarray] | None = None, document_text=None,
                    use_reader: bool = True) -> list[Candidate]:
    """The sentences to answer with, best first; empty means abstain.

    With the reader (and its fitted abstention, qa/reader.json) see reader_answers: no hand rule gates it. Without
    the reader (use_reader False: its model could not be loaded) the selector fitted without it decides, with the
    hand rules beside it; without either, the hand rules alone."""
    pool = candidates(spec, passages, weights, question_vector, sentence_vectors, document_text)
    reader_model = load_reader_selector() if use_reader else None
    model = load_selector()
    if reader_model:
        return reader_answers(reader_model, spec, read(spec, pool, document_text)) if pool else []
    if model:
        pool = [replace(c, score=selector_probability(model, c.features)) for c in pool]
        good = sorted((c for c in pool if selector_keeps(model, spec, c)), key=lambda c: -c.score)
    else:
        good = sorted((c for c in pool if qualifies(spec, c)), key=lambda c: -c.score)
    return distinct_sentences(spec, good)


def distinct_sentences(spec: QuestionSpec, good: list[Candidate]) -> list[Candidate]:
    """Up to MAX_SENTENCES of the good sentences, best first, each close to the best and adding something."""
    chosen: list[Candidate] = []
    seen_texts, seen_values = set(), set()
    for c in good:
        if len(chosen) == MAX_SENTENCES or (chosen and c.score < KEEP_RATIO * chosen[0].score):
            break
        key = re.sub(r"\W+", " ", c.text.lower()).strip()
        values = {v.lower() for v in c.values}
        if key in seen_texts or any(x.passage.source == c.passage.source and x.start < c.end and c.start < x.end
                                    for x in chosen):
            continue  # the same words, or a span overlapping one already cited
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
    # Prose collapses hard wraps; the citation keeps the exact span. Each sentence of a span carries its marker
    # (a span is two sentences when a pronoun brought its antecedent).
    prose = " ".join(_with_marker(" ".join(c.text[s:e].split()), i) for i, c in enumerate(ordered, start=1)
                     for s, e in split_sentences(c.text))
    return prose, citations, values_differ(chosen)


def values_differ(chosen: list[Candidate]) -> bool:
    """Do sentences answering one question give different values (the sources disagree)?"""
    values = [{v.lower() for v in c.values} for c in chosen if c.values]
    return len(values) > 1 and any(v != values[0] for v in values[1:])
