"""The systems compared on one eval set: ours and the baselines, each a question -> Answer JSON function."""

from __future__ import annotations

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


def all_systems(qa: QA, baselines: bool) -> dict[str, System]:
    systems = {"ours (hybrid)": ours(qa)}
    if baselines:
        systems |= {"bm25 only": ours(qa, mode="lexical"), "dense only": ours(qa, mode="dense"),
                    "plain langchain": plain_langchain(qa)}
    return systems
