"""The answering engine: built once (index, model, store), then asked many questions."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from itertools import pairwise

from index.config import Settings
from index.errors import QAError
from index.store import side_store_path

from .answer import DONT_KNOW, absent_names, compose, load_reader_selector, select_evidence, term_weights, values_differ
from .followup import resolve_followup
from .question import analyse
from .request import MAX_K, MAX_QUESTION_CHARS, check_question  # noqa: F401 (the engine's API too)
from .retrieve import CorpusIndex
from .types import Answer, Passage

# Answers are selected from this many passages per question part (the top k are shown): at 10, 86% of the
# answerable train/dev questions have an answering sentence in the pool, at 5, 78%.
ANSWER_POOL = 10


MAX_PARTS = 4  # "and which ..." 200 times made one 2 kB request hold a server worker for 7 s
_COMPOUND = re.compile(r",?\s+and\s+(?=(?:which|what|who|whom|whose|how|when|where|why)\b)", re.I)


def split_question(search_query: str) -> list[str]:
    """Parts of a compound question ("How many X, and which Y?"), each answered on its own."""
    parts = [p.strip().rstrip("?,") + "?" for p in _COMPOUND.split(search_query) if p.strip()]
    if not 2 <= len(parts) <= MAX_PARTS:  # past MAX_PARTS it is searched as one question: each part costs a search
        return [search_query]
    # A later part may point back at an earlier one ("Who killed X, and how old was he?"): it is searched,
    # and said when unanswered, as that part's follow-up.
    return [parts[0], *(resolve_followup(part, [(before, "")]) for before, part in pairwise(parts))]


def answer_from_passages(index: CorpusIndex, question: str, search_query: str, parts: list[str],
                         passages_per_part: list[list[Passage]], timings: dict[str, float] | None = None,
                         shown: int | None = None, reader: bool = True) -> Answer:
    """Select, cite and compose from the passages retrieved for each part; abstain when nothing answers.

    The answer lists the first `shown` passages of each part (all of them when None). reader=False answers as the
    reader's fallback does (the eval's "without the reader" system)."""
    t0 = time.perf_counter()
    chosen, missing, conflict, warnings = [], [], False, []
    use_reader = None if reader else False  # known once a part needs it: the reader's model is loaded only then
    for part, passages in zip(parts, passages_per_part):
        spec = analyse(part)
        vectors = index.sentence_vectors([p.chunk_id for p in passages]) if passages else {}
        if passages and use_reader is None:
            use_reader = reader_loads(warnings)
        # A question naming what no document mentions abstains; with the reader, its fitted abstention does that
        # alone (on dev the rule changed no answer: see docs/reader.md).
        picked = [] if not use_reader and absent_names(spec, index.document_frequency) else select_evidence(
            spec, passages, term_weights(spec, index.document_frequency, index.n_chunks), index.embed(part), vectors,
            index.document_text, use_reader=bool(use_reader))
        spans = {(c.passage.source, c.start) for c in chosen}
        chosen += [c for c in picked if (c.passage.source, c.start) not in spans]
        conflict = conflict or values_differ(picked)  # within a part: two parts ask for different things
        if not picked:
            missing.append(part)
    passages = list({p.chunk_id: p for ps in passages_per_part for p in ps[:shown]}.values())
    if chosen:
        prose, citations, _ = compose(chosen, index.document_text)
        if missing:  # a compound question answered in part says which part it could not answer
            prose += " " + " ".join(f"{DONT_KNOW[:-1]}: {m}" for m in missing)
    else:
        prose, citations, conflict = DONT_KNOW, (), False
    timings = dict(timings or {})
    timings["answer"] = (time.perf_counter() - t0) * 1000
    return Answer(question=question, search_query=search_query, answer=prose, abstained=not chosen,
                  citations=citations, passages=tuple(passages), conflict=conflict, timings_ms=timings,
                  warnings=tuple(warnings))


def reader_loads(warnings: list[str]) -> bool:
    """Whether the reader answers (its fitted selector installed and its model loaded); when its model cannot be
    loaded, a warning says so and the selector fitted without it answers."""
    from .reader import ReaderUnavailable, get_reader

    if not load_reader_selector():
        return False
    try:
        get_reader()
    except ReaderUnavailable as exc:
        warnings.append(f"{exc}; answered without the reader (the earlier fitted selector)")
        return False
    return True


class QA:
    """Open once, ask many: `QA(settings).ask("Who ...?")`.

    A long-lived QA (the server) follows `qa index` runs made beside it: each question is
    answered from one index generation, and when a run commits (or a rebuild moves its new
    store into place) the next question opens the new one. An answer whose generation changed
    while it was computed is computed again, so its texts and offsets always come from one index.
    """

    ATTEMPTS = 3

    def __init__(self, settings: Settings, build_if_missing: bool = True, on_build=None, fast_start: bool = False):
        if build_if_missing and not side_store_path(settings.index_dir).exists():
            from index.build import build_index

            report = build_index(settings)
            if on_build:
                on_build(report)
        self.settings = settings
        self.fast_start = fast_start
        self._index = CorpusIndex(settings, fast_start=fast_start)
        self._reopen = threading.Lock()

    @property
    def index(self) -> CorpusIndex:
        """The index as it is now (reopened when `qa index` has changed it since it was opened)."""
        index = self._index
        if index.is_current():
            return index
        with self._reopen:
            if not self._index.is_current():
                self._index = CorpusIndex(self.settings, fast_start=self.fast_start)
            return self._index

    def retrieve(self, search_query: str, k: int = 5, mode: str = "hybrid") -> list[Passage]:
        return self.index.search(search_query, k=k, mode=mode)

    def ask(self, question: str, history: list[tuple[str, str]] | None = None, k: int = 5,
            mode: str = "hybrid", llm=None, show_unsupported: bool = False, on_token=None) -> Answer:
        """Answer one question (a follow-up is resolved against history first) from one index generation.

        With llm (a qa.llm.LLM) the model writes the answer from the same passages and the grounding guard
        keeps the sentences they support (see qa/generate.py); on_token receives its unguarded tokens."""
        question = check_question(question, k, mode)
        for attempt in range(1, self.ATTEMPTS + 1):
            index = self.index
            try:
                answer = self._ask(index, question, history, k, mode, llm, show_unsupported, on_token)
            except Exception:  # e.g. Chroma's collection dropped by a rebuild mid-question
                if index.is_current():
                    raise
                continue
            if index.is_current():
                return answer
        raise QAError("the index changed while answering, repeatedly: try again in a moment")

    def _ask(self, index: CorpusIndex, question: str, history, k: int, mode: str, llm=None,
             show_unsupported: bool = False, on_token=None) -> Answer:
        t0 = time.perf_counter()
        search_query = resolve_followup(question, history)
        parts = split_question(search_query)
        pools = [index.search(part, k=max(k, ANSWER_POOL), mode=mode) for part in parts]
        passages_per_part = [pool[:k] for pool in pools]
        t1 = time.perf_counter()
        timings = {"retrieve": (t1 - t0) * 1000}
        if llm is None:
            answer = answer_from_passages(index, question, search_query, parts, pools, timings, shown=k)
        else:
            from .generate import generative_answer

            passages = list({p.chunk_id: p for ps in passages_per_part for p in ps}.values())
            answer = generative_answer(
                llm, question, search_query, passages, index.document_text, index.embed,
                lambda: answer_from_passages(index, question, search_query, parts, passages_per_part, timings),
                show_unsupported=show_unsupported, on_token=on_token, timings=timings)
        answer.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        return replace(answer, generation=index.generation)

    def source_text(self, source: str, generation: str | None = None) -> str:
        """Canonical text of an indexed source; with generation, only from that index (else an error)."""
        index = self.index
        if generation is not None and index.generation != generation:
            raise QAError("the index changed since this answer: ask again")
        return index.document_text(source)
