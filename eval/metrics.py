"""Scoring one answer against one eval item, and averaging (overall and per type).

Definitions follow DESIGN.md "Eval sets": SQuAD normalisation for answer strings,
ALCE citation recall/precision, CRAG truthfulness, retrieval scored by offsets.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from index.chunk import split_sentences
from index.errors import UsageError
from qa.answer import DONT_KNOW

from .judge import strip_markers, supports

_ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answers: tuple[str, ...]
    all: bool
    answerable: bool
    evidence: tuple[tuple[str, str], ...]  # (source, exact quote)
    type: str
    history: tuple[tuple[str, str], ...] = ()
    paraphrase: str = ""  # a second wording that shares few words with the evidence


def load_set(path: Path) -> list[EvalItem]:
    """The items of an eval set; a file that cannot be one is a UsageError naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"eval set {path} cannot be read: {exc.strerror if isinstance(exc, OSError) else 'not UTF-8'}"
                         ) from None
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            items.append(EvalItem(
                id=d["id"], question=d["question"], answers=tuple(d.get("answers", [])), all=bool(d.get("all")),
                answerable=bool(d["answerable"]), type=d["type"],
                evidence=tuple((e["source"], e["quote"]) for e in d.get("evidence", [])),
                history=tuple(tuple(h) for h in d.get("history", [])), paraphrase=d.get("paraphrase", "")))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{n}: not JSON ({exc.msg})") from None
        except KeyError as exc:
            raise UsageError(f"{path}:{n}: missing field {exc}") from None
        except (TypeError, AttributeError):
            raise UsageError(f"{path}:{n}: not an eval item (see DESIGN.md, Eval sets)") from None
    return items


def normalise(text: str) -> str:
    """SQuAD normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower().replace("\u2019", "'")
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def is_correct(answer_text: str, acceptable: tuple[str, ...], need_all: bool) -> bool:
    got = normalise(answer_text)
    hits = [normalise(a) in got for a in acceptable]
    return bool(hits) and (all(hits) if need_all else any(hits))


def evidence_spans(item: EvalItem, texts: dict[str, str], exact: bool = True) -> list[tuple[str, int, int]]:
    """(source, start, end) of every evidence quote (its first occurrence in the canonical text).

    exact=False (sets whose writers quoted the document as they read it, not as the loader does: blind2) finds a
    quote with any whitespace between its words, and leaves out a quote the loaded text does not hold at all (a
    PDF the loader reads differently): the item's retrieval is then scored on the quotes found, or not at all."""
    spans = []
    for source, quote in item.evidence:
        if source not in texts:
            raise UsageError(f"{item.id}: evidence names {source!r}, which is not in the indexed corpus")
        start = texts[source].find(quote)
        if start >= 0:
            spans.append((source, start, start + len(quote)))
            continue
        if exact:
            raise UsageError(f"{item.id}: evidence quote not in {source}: {quote!r}")
        found = re.search(r"\s+".join(re.escape(w) for w in quote.split()), texts[source])
        if found:
            spans.append((source, found.start(), found.end()))
    return spans


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def covers(source: str, start: int, end: int, span: tuple[str, int, int]) -> bool:
    """A chunk is relevant to a span when it contains it (or, for a span longer than the chunk, most of it)."""
    s_source, s0, s1 = span
    if source != s_source:
        return False
    return (start <= s0 and s1 <= end) or _overlap(start, end, s0, s1) >= 0.5 * (s1 - s0)


def answer_sentences(answer_text: str) -> list[str]:
    return [answer_text[s:e] for s, e in split_sentences(answer_text)]


def cited_numbers(sentence: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]


@dataclass
class ItemScore:
    id: str
    type: str
    answerable: bool
    abstained: bool
    correct: bool | None = None
    hit: float | None = None
    recall: float | None = None
    rr: float | None = None
    citation_recall: float | None = None
    citation_precision: float | None = None
    evidence_overlap: float | None = None
    support: float | None = None
    truthfulness: float = 0.0
    length: int | None = None
    latency_ms: float = 0.0
    answer: str = ""
    extra: dict = field(default_factory=dict)


def score_item(item: EvalItem, answer: dict, texts: dict[str, str], k: int, threshold: float,
               latency_ms: float, exact_quotes: bool = True) -> ItemScore:
    """All per-item metrics for one Answer JSON."""
    s = ItemScore(item.id, item.type, item.answerable, bool(answer["abstained"]), latency_ms=latency_ms,
                  answer=answer["answer"])
    passages = answer["passages"][:k]
    spans = evidence_spans(item, texts, exact_quotes) if item.answerable else []
    if spans:
        relevant = [any(covers(p["source"], p["start"], p["end"], sp) for sp in spans) for p in passages]
        s.hit = float(any(relevant))
        s.recall = mean(any(covers(p["source"], p["start"], p["end"], sp) for p in passages) for sp in spans)
        s.rr = next((1.0 / (i + 1) for i, r in enumerate(relevant) if r), 0.0)
    if item.answerable:
        s.correct = not s.abstained and is_correct(answer["answer"], item.answers, item.all)
    if s.abstained:
        s.truthfulness = 0.0
    else:
        s.truthfulness = 1.0 if (item.answerable and s.correct) else -1.0
        s.length = len(answer["answer"])
        cites = {c["n"]: c for c in answer["citations"]}
        sentences = answer_sentences(answer["answer"])
        recall_hits, precision_hits, n_citations, supported = [], 0, 0, []
        # What the answer rests on: the retrieved passages and the cited spans (a span may reach past its
        # passage, when a sentence opening with a pronoun brings the sentence before it).
        retrieved = " ".join([p["text"] for p in answer["passages"]] + [c["text"] for c in answer["citations"]])
        for sentence in sentences:
            if sentence.startswith(DONT_KNOW[:-1]):
                continue  # "The documents don't say: ..." makes no claim to support
            ns = [n for n in cited_numbers(sentence) if n in cites]
            claim = strip_markers(sentence)
            supported.append(supports(retrieved, claim, threshold))
            joint = " ".join(cites[n]["text"] for n in ns)
            ok = bool(ns) and supports(joint, claim, threshold)
            recall_hits.append(ok)
            for n in ns:  # ALCE: irrelevant = fails alone and the rest still support without it
                alone = supports(cites[n]["text"], claim, threshold)
                rest = [cites[m]["text"] for m in ns if m != n]
                irrelevant = not alone and (not ok or (bool(rest) and supports(" ".join(rest), claim, threshold)))
                precision_hits += not irrelevant
                n_citations += 1
        s.citation_recall = mean(recall_hits) if recall_hits else 0.0
        s.citation_precision = precision_hits / n_citations if n_citations else 0.0
        s.support = mean(supported) if supported else 0.0
        if spans:
            s.evidence_overlap = mean(
                any(_overlap(c["start"], c["end"], sp[1], sp[2]) > 0 and c["source"] == sp[0]
                    for c in answer["citations"]) for sp in spans)
    return s


def _avg(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(mean(values), 4) if values else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 2)


def aggregate(scores: list[ItemScore]) -> dict:
    """Averages over a group of items; answerable and unanswerable kept apart as SQuAD 2.0 does."""
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    answered = [s for s in scores if not s.abstained]
    abstained = [s for s in scores if s.abstained]
    return {
        "items": len(scores),
        "hit@k": _avg(s.hit for s in answerable),
        "recall@k": _avg(s.recall for s in answerable),
        "mrr": _avg(s.rr for s in answerable),
        "correctness": _avg(float(bool(s.correct)) for s in answerable),
        "citation_recall": _avg(s.citation_recall for s in answered),
        "citation_precision": _avg(s.citation_precision for s in answered),
        "evidence_overlap": _avg(s.evidence_overlap for s in answered),
        "support": _avg(s.support for s in answered),
        "abstention_precision": (round(sum(not s.answerable for s in abstained) / len(abstained), 4)
                                 if abstained else None),
        "abstention_recall": _avg(float(s.abstained) for s in unanswerable),
        "false_abstention": _avg(float(s.abstained) for s in answerable),
        "truthfulness": _avg(s.truthfulness for s in scores),
        "answer_chars": _avg(s.length for s in answered),
        "latency_p50_ms": _percentile([s.latency_ms for s in scores], 0.5),
        "latency_p95_ms": _percentile([s.latency_ms for s in scores], 0.95),
    }
