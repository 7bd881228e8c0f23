"""LangChain face of the engine: a BaseRetriever and the answer chain as an LCEL Runnable.

They wrap the same functions `QA.ask` calls, so the CLI can skip importing LangChain
(0.7 s) while the server and the eval compose with it.

    retriever = HybridRetriever(qa=qa, k=3)
    retriever.invoke("Which drug killed Daniel Whitworth?", k=1)   # -> [Document]
    chain = build_chain(qa)
    message = chain.invoke("Which drug killed Daniel Whitworth?")  # -> AIMessage
    message.content                                                # the answer prose with [n] markers
    message.response_metadata["answer"]                            # the full Answer JSON
    (chain | StrOutputParser()).invoke({"question": "How old was he?", "history": [...]})
"""

from __future__ import annotations

from typing import Literal

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import AIMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from index.errors import UsageError

from .engine import ANSWER_POOL, MAX_K, QA, answer_from_passages, check_question, split_question
from .followup import resolve_followup
from .types import Answer, Passage

Mode = Literal["hybrid", "dense", "lexical"]


class HybridRetriever(BaseRetriever):
    """Dense (Chroma) + BM25 retrieval fused by reciprocal rank, as LangChain Documents.

    `invoke(query, k=..., mode=...)` overrides the constructor's k and mode for one call; an empty
    query retrieves nothing.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    qa: QA
    k: int = Field(5, ge=1, le=MAX_K)
    mode: Mode = "hybrid"

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, mode: str | None = None) -> list[Document]:
        if not isinstance(query, str) or not query.strip():
            return []
        k, mode = self.k if k is None else k, mode or self.mode
        query = check_question(query, k, mode)
        return [passage_to_document(p) for p in self.qa.retrieve(query, k=k, mode=mode)]

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       k: int | None = None, mode: str | None = None) -> list[Document]:
        # BaseRetriever's default drops invoke's keyword arguments on the async path.
        return await run_in_executor(None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(),
                                     k=k, mode=mode)


def passage_to_document(p: Passage) -> Document:
    return Document(page_content=p.text, id=p.chunk_id, metadata=p.to_json())


def document_to_passage(d: Document) -> Passage:
    return Passage(**d.metadata)


class AskInput(BaseModel):
    """What the answer chain takes (a bare string is taken as the question)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., description="the question")
    history: list[tuple[str, str]] = Field(default_factory=list,
                                           description="earlier turns, oldest first: [(user, assistant), ...]")
    k: int = Field(5, ge=1, le=MAX_K, description="passages to retrieve")
    mode: Mode = Field("hybrid", description="retrieval mode")


def answer_message(answer: Answer) -> AIMessage:
    """The chain's output: the prose as content (so StrOutputParser works), the Answer JSON in metadata."""
    return AIMessage(content=answer.answer, response_metadata={"answer": answer.to_json()})


def answer_of(message: AIMessage) -> Answer:
    """The Answer a chain's message carries."""
    return Answer.from_json(message.response_metadata["answer"])


def build_chain(qa: QA, k: int = 5, mode: Mode = "hybrid") -> Runnable:
    """AskInput (or a question string) -> AIMessage: resolve the follow-up, retrieve, answer.

    `stream` yields one chunk, the finished answer: the extractive answerer composes its answer
    from all selected sentences at once, so there is nothing partial to stream before it is done.
    Bad input raises UsageError, as `QA.ask` does.
    """
    # AskInput with this chain's defaults, so that input_schema says what the chain does.
    schema = create_model("AskInput", __base__=AskInput, k=(int, Field(k, ge=1, le=MAX_K)),
                          mode=(Mode, Field(mode, description="retrieval mode")))

    def validate(value: str | dict | BaseModel) -> dict:
        if isinstance(value, BaseModel):
            value = value.model_dump()
        elif isinstance(value, str):
            value = {"question": value}
        try:
            request = schema.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UsageError(f"{'.'.join(map(str, first['loc'])) or 'input'}: {first['msg']}") from None
        question = check_question(request.question, request.k, request.mode)
        return {**request.model_dump(), "question": question}

    def retrieve(inputs: dict) -> list[list[Document]]:
        # As QA.ask: answers are selected from ANSWER_POOL passages, the top k are shown.
        return HybridRetriever(qa=qa, k=max(inputs["k"], ANSWER_POOL), mode=inputs["mode"]).batch(inputs["parts"])

    def answer(inputs: dict) -> AIMessage:
        passages = [[document_to_passage(d) for d in docs] for docs in inputs["documents"]]
        return answer_message(answer_from_passages(qa.index, inputs["question"], inputs["search_query"],
                                                   inputs["parts"], passages, shown=inputs["k"]))

    chain = (
        RunnableLambda(validate)
        | RunnablePassthrough.assign(search_query=lambda x: resolve_followup(x["question"], x["history"]))
        | RunnablePassthrough.assign(parts=lambda x: split_question(x["search_query"]))
        | RunnablePassthrough.assign(documents=RunnableLambda(retrieve))
        | RunnableLambda(answer)
    )
    return chain.with_types(input_type=schema, output_type=AIMessage)
