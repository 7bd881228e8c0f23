"""LangChain face of the engine: a BaseRetriever and the answer chain as an LCEL Runnable.

They wrap the same functions `QA.ask` calls, so the CLI can skip importing LangChain
(0.7 s) while the server and the eval compose with it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from .engine import QA, answer_from_passages, check_question, split_question
from .followup import resolve_followup
from .types import Answer, Passage


class HybridRetriever(BaseRetriever):
    """Dense (Chroma) + BM25 retrieval fused by reciprocal rank, as LangChain Documents."""

    qa: Any
    k: int = 5
    mode: str = "hybrid"

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [passage_to_document(p) for p in self.qa.retrieve(query, k=self.k, mode=self.mode)]


def passage_to_document(p: Passage) -> Document:
    return Document(page_content=p.text, id=p.chunk_id, metadata=p.to_json())


def document_to_passage(d: Document) -> Passage:
    return Passage(**d.metadata)


def build_chain(qa: QA, k: int = 5, mode: str = "hybrid") -> Runnable:
    """{"question", "history"?, "k"?, "mode"?} -> Answer: resolve the follow-up, retrieve, answer."""

    def validate(inputs: dict) -> dict:
        kk, mm = inputs.get("k") or k, inputs.get("mode") or mode
        question = check_question(inputs["question"], kk, mm)
        return {"question": question, "history": inputs.get("history") or [], "k": kk, "mode": mm}

    def retrieve(inputs: dict) -> list[list[Document]]:
        retriever = HybridRetriever(qa=qa, k=inputs["k"], mode=inputs["mode"])
        return retriever.batch(inputs["parts"])

    def answer(inputs: dict) -> Answer:
        passages = [[document_to_passage(d) for d in docs] for docs in inputs["documents"]]
        return answer_from_passages(qa.index, inputs["question"], inputs["search_query"], inputs["parts"], passages)

    return (
        RunnableLambda(validate)
        | RunnablePassthrough.assign(search_query=lambda x: resolve_followup(x["question"], x["history"]))
        | RunnablePassthrough.assign(parts=lambda x: split_question(x["search_query"]))
        | RunnablePassthrough.assign(documents=RunnableLambda(retrieve))
        | RunnableLambda(answer)
    )
