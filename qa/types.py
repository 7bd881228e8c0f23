"""The result types: one JSON shape each, shared by the CLI, the REST API and the eval."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its scores (fused rank score, and each side's where it ranked)."""

    chunk_id: str
    source: str
    start: int
    end: int
    text: str
    line: int
    score: float
    dense: float | None = None  # cosine similarity to the question
    lexical: float | None = None  # BM25 score
    headings: str = ""  # heading path above the chunk
    page: int | None = None  # PDF page
    columns: str = ""  # a table chunk's column headers
    table: bool = False  # a table chunk: its rows are its units

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """An exact span: canonical_text(source)[start:end] == text."""

    n: int
    source: str
    start: int
    end: int
    text: str
    chunk_id: str
    score: float
    line: int
    headings: str = ""  # heading path above the cited sentence
    page: int | None = None  # PDF page

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GeneratedSentence:
    """A sentence an LLM wrote, as the grounding guard judged it (qa/guard.py)."""

    text: str  # without its [n] markers
    citations: tuple[int, ...]  # the Answer's citation numbers it is shown with; empty unless kept
    cited_passages: tuple[int, ...]  # the passage numbers the model wrote after it
    support: float  # share of its content words in the best supporting sentence of the cited passages
    cosine: float  # embedding similarity to that sentence
    kept: bool  # shown as a cited sentence of the answer
    reason: str = ""  # why it was not kept

    def to_json(self) -> dict:
        return {"text": self.text, "citations": list(self.citations), "cited_passages": list(self.cited_passages),
                "support": self.support, "cosine": self.cosine, "kept": self.kept, "reason": self.reason}


@dataclass(frozen=True)
class Answer:
    question: str
    search_query: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    conflict: bool = False  # the cited sources give different values for what was asked
    timings_ms: dict[str, float] = field(default_factory=dict)
    generation: str = ""  # the index generation it was answered from (not part of the JSON shape)
    # What wrote the prose: "extractive", an LLM spec ("openai:URL:MODEL"), or "extractive (fallback: why)".
    generator: str = "extractive"
    sentences: tuple[GeneratedSentence, ...] = ()  # a generated answer's sentences; empty for the extractive one
    warnings: tuple[str, ...] = ()  # what the user should know about how it was answered (the reader fell back)

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "search_query": self.search_query,
            "answer": self.answer,
            "abstained": self.abstained,
            "conflict": self.conflict,
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "generator": self.generator,
            "sentences": [s.to_json() for s in self.sentences],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: dict) -> "Answer":
        return cls(
            question=data["question"], search_query=data["search_query"], answer=data["answer"],
            abstained=data["abstained"], conflict=data.get("conflict", False),
            citations=tuple(Citation(**c) for c in data["citations"]),
            passages=tuple(Passage(**p) for p in data["passages"]),
            timings_ms=data.get("timings_ms", {}), generator=data.get("generator", "extractive"),
            sentences=tuple(GeneratedSentence(**{**s, "citations": tuple(s["citations"]),
                                                 "cited_passages": tuple(s["cited_passages"])})
                            for s in data.get("sentences", ())), warnings=tuple(data.get("warnings", ())))
