"""The systems compared on one eval set: ours and the baselines, each a question -> Answer JSON function."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from index.chunk import line_number
from qa.chain import build_chain
from qa.engine import QA
from qa.types import Answer, Citation, Passage

System = Callable[[str, list], dict]


def ours(qa: QA, mode: str = "hybrid", k: int = 5) -> System:
    chain = build_chain(qa, k=k, mode=mode)
    return lambda question, history: chain.invoke({"question": question, "history": history}).response_metadata["answer"]


class _QueryEmbeddings:
    """LangChain Embeddings over the same local model, for the plain pipeline."""

    def __init__(self, qa: QA):
        self.qa = qa

    def embed_query(self, text: str) -> list[float]:
        return self.qa.index.embed(text).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]


def plain_langchain(qa: QA, k: int = 5) -> System:
    """The textbook pipeline: Chroma similarity top-k, answer = the best chunk, no abstention."""
    from langchain_chroma import Chroma

    from index.store import open_chroma

    store = Chroma(client=open_chroma(qa.settings), collection_name=qa.index.meta["collection"],
                   embedding_function=_QueryEmbeddings(qa))

    def run(question: str, history: list) -> dict:
        hits = store.similarity_search_with_score(question, k=k)
        passages = []
        for doc, distance in hits:
            m = doc.metadata
            line = line_number(qa.index.document_text(m["source"]), m["start"])
            passages.append(Passage(doc.id, m["source"], m["start"], m["end"], doc.page_content, line,
                                    1.0 - distance, dense=1.0 - distance))
        best = passages[0]
        citation = Citation(1, best.source, best.start, best.end, best.text, best.chunk_id, best.score, best.line)
        return Answer(question, question, best.text + " [1]", False, (citation,), tuple(passages)).to_json()

    return run


def sentence_ranker(qa: QA, k: int = 5) -> System:
    """The 30-line baseline: the top two sentences of the hybrid passages by sentence cosine plus lexical
    coverage, no rules; abstains when the best cosine is under one threshold fitted on dev (eval/fit.py)."""
    import json

    from qa.answer import SELECTOR_FEATURES, candidates, compose, term_weights
    from qa.engine import ANSWER_POOL, DONT_KNOW
    from qa.followup import resolve_followup
    from qa.question import analyse

    cos, lexical = SELECTOR_FEATURES.index("cos"), SELECTOR_FEATURES.index("coverage_sentence")
    fitted = Path(__file__).resolve().parent / "reports" / "selector.json"  # eval/fit.py chose it on dev
    threshold = json.loads(fitted.read_text()).get("ranker_threshold", 0.0) if fitted.exists() else 0.0

    def run(question: str, history: list) -> dict:
        query = resolve_followup(question, [tuple(h) for h in history])
        index = qa.index
        passages = index.search(query, k=max(k, ANSWER_POOL))  # the same pool as ours
        spec = analyse(query)
        pool = candidates(spec, passages, term_weights(spec, index.document_frequency, index.n_chunks),
                          index.embed(query), index.sentence_vectors([p.chunk_id for p in passages]))
        top = sorted(pool, key=lambda c: -(c.features[cos] + c.features[lexical]))[:2]
        if not top or max(c.features[cos] for c in pool) < threshold:
            return Answer(question, query, DONT_KNOW, True, (), tuple(passages[:k])).to_json()
        prose, citations, conflict = compose(top, index.document_text)
        return Answer(question, query, prose, False, citations, tuple(passages[:k]), conflict).to_json()

    return run


def reranker_top_sentence(qa: QA, k: int = 5) -> System:
    """The cross-encoder's best sentence from the same passages and candidates as ours (qa.answer.read), no rules
    and no fitted selector; abstains when its logit is under one threshold fitted on dev (eval/fit.py --reader)."""
    import json

    from qa.answer import READER_SELECTOR_FILE, candidates, compose, read, term_weights
    from qa.engine import ANSWER_POOL, DONT_KNOW
    from qa.followup import resolve_followup
    from qa.question import analyse

    fitted = READER_SELECTOR_FILE  # eval/fit.py --reader chose it on dev
    threshold = json.loads(fitted.read_text()).get("reranker_threshold", 0.0) if fitted.exists() else 0.0

    def run(question: str, history: list) -> dict:
        query = resolve_followup(question, [tuple(h) for h in history])
        index = qa.index
        passages = index.search(query, k=max(k, ANSWER_POOL))
        spec = analyse(query)
        pool = candidates(spec, passages, term_weights(spec, index.document_frequency, index.n_chunks),
                          index.embed(query), index.sentence_vectors([p.chunk_id for p in passages]),
                          index.document_text)
        read_pool = read(spec, pool, index.document_text) if pool else []  # best read first
        best = read_pool[0] if read_pool else None
        if best is None or best[1]["reader"] < threshold:
            return Answer(question, query, DONT_KNOW, True, (), tuple(passages[:k])).to_json()
        prose, citations, conflict = compose([best[0]], index.document_text)
        return Answer(question, query, prose, False, citations, tuple(passages[:k]), conflict).to_json()

    return run


def without_reader(qa: QA, k: int = 5) -> System:
    """Ours as it answers when the reader's model cannot be loaded: the selector fitted before the reader."""
    from qa.engine import ANSWER_POOL, answer_from_passages, split_question
    from qa.followup import resolve_followup

    def run(question: str, history: list) -> dict:
        query = resolve_followup(question, [tuple(h) for h in history])
        parts = split_question(query)
        pools = [qa.index.search(part, k=max(k, ANSWER_POOL)) for part in parts]
        return answer_from_passages(qa.index, question, query, parts, pools, shown=k, reader=False).to_json()

    return run


def generated(qa: QA, llm, k: int = 5) -> System:
    """Answers an LLM writes from the hybrid passages, each sentence checked by the grounding guard."""
    return lambda question, history: qa.ask(question, history=[tuple(h) for h in history], k=k, llm=llm).to_json()


def all_systems(qa: QA, baselines: bool, llm=None) -> dict[str, System]:
    systems = {"ours (hybrid)": ours(qa)}
    if baselines:
        systems |= {"without the reader": without_reader(qa), "sentence ranker": sentence_ranker(qa),
                    "reranker top sentence": reranker_top_sentence(qa),
                    "bm25 only": ours(qa, mode="lexical"),
                    "dense only": ours(qa, mode="dense"), "plain langchain": plain_langchain(qa)}
    if llm is not None:
        systems[f"{llm.name} (guarded)"] = generated(qa, llm)
    return systems
