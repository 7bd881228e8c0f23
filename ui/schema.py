"""What the web layer takes and returns, as pydantic models: the REST API validates and documents with them,
and the Gradio API endpoint validates with the same request model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, StringConstraints

from index.collections import DEFAULT_COLLECTION, NAME_PATTERN
from qa.engine import MAX_K, MAX_QUESTION_CHARS
from qa.types import Citation, GeneratedSentence, Passage

MAX_HISTORY_TURNS = 20
MAX_TURN_CHARS = 4000

Turn = Annotated[str, StringConstraints(strict=True, max_length=MAX_TURN_CHARS)]
CollectionName = Annotated[str, StringConstraints(strict=True, pattern=NAME_PATTERN)]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "How old was he?", "history": [["Which drug killed Daniel Whitworth?", "GHB"]], "k": 5}]})

    question: StrictStr = Field(..., max_length=MAX_QUESTION_CHARS, description="the question")
    history: list[tuple[Turn, Turn]] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS,
                                             description="earlier turns, oldest first: [[user, assistant], ...]")
    k: StrictInt = Field(5, ge=1, le=MAX_K, description="passages to retrieve")
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    collection: CollectionName = Field(DEFAULT_COLLECTION, description="the collection to answer from")
    llm: StrictStr | None = Field(None, max_length=1000, description=(
        "a generative backend the server offers (`qa serve --llm SPEC` or QA_LLM), e.g. \"ollama:llama3.2\": it "
        "writes the answer and the grounding guard keeps only the sentences the cited passages support; "
        "default: the extractive answerer"))
    show_unsupported: StrictBool = Field(False, description="with llm: keep unsupported sentences, flagged "
                                                            "[unsupported] and citing nothing")


class AnswerJSON(BaseModel):
    """The Answer JSON (`Answer.to_json()`); citations and passages are the qa.types dataclasses, so a field
    added there is documented and returned here too."""

    question: str = Field(description="the question as asked")
    search_query: str = Field(description="the question as resolved from the history, as searched")
    answer: str = Field(description="prose with [n] markers, or \"The documents don't say.\"")
    abstained: bool = Field(description="true when nothing in the documents answers")
    conflict: bool = Field(description="the cited sources give different values for what was asked")
    citations: list[Citation] = Field(description="exact spans: canonical_text(source)[start:end] == text")
    passages: list[Passage] = Field(description="retrieved chunks with their scores")
    timings_ms: dict[str, float] = Field(description="milliseconds per stage")
    generator: str = Field(description="what wrote the answer: \"extractive\", the LLM's spec, or \"extractive "
                                       "(fallback: why)\" when a generated answer could not be shown")
    sentences: list[GeneratedSentence] = Field(description=(
        "a generated answer's sentences as the grounding guard judged them (kept ones cite the supporting "
        "sentence; `citations` are numbers into `citations` above); empty for the extractive answerer, whose "
        "sentences are all verbatim cited spans"))
    warnings: list[str] = Field(default_factory=list, description=(
        "what to know about how it was answered, e.g. the reader model could not be loaded and the fitted "
        "selector without it chose the sentences"))


class Sources(BaseModel):
    sources: list[str] = Field(description="indexed sources, paths relative to the corpus")


class CollectionJSON(BaseModel):
    name: str
    corpus: str = Field(description="the folder it indexes (absolute path)")
    documents: int
    chunks: int
    bytes: int = Field(description="size on disk: index and uploaded documents")
    indexed_at: float | None = Field(description="when the index last changed, seconds since the epoch")
    uploads: bool = Field(description="its documents were uploaded from the browser")


class Collections(BaseModel):
    collections: list[CollectionJSON] = Field(description="the default collection first, then by name")


class ConversationSummary(BaseModel):
    id: str = Field(description="32 hex digits")
    title: str = Field(description="the first question, on one line, cut to 80 characters")
    collection: str = Field(description="the collection it was asked in")
    created: str = Field(description="when it started, ISO 8601 UTC")
    updated: str = Field(description="when its last question was asked, ISO 8601 UTC")
    turns: int = Field(description="saved turns (the last 100 are kept)")


class Conversations(BaseModel):
    conversations: list[ConversationSummary] = Field(
        description="most recently updated first; the 200 most recent are kept (64 MB at most)")


class SavedTurn(BaseModel):
    question: str = Field(description="the question as typed")
    answer: AnswerJSON
    at: str = Field(description="when it was answered, ISO 8601 UTC")


class ConversationJSON(BaseModel):
    id: str
    title: str
    collection: str
    created: str
    updated: str
    turns: list[SavedTurn] = Field(description="oldest first")


class Deleted(BaseModel):
    deleted: str = Field(description="the id of the conversation deleted")


class DocumentJSON(BaseModel):
    source: str = Field(description="path relative to the collection's folder")
    chunks: int = Field(description="indexed chunks (a chunk text shared with an earlier document counts there)")


class Documents(BaseModel):
    collection: str
    documents: list[DocumentJSON] = Field(description="by source")


class Removed(BaseModel):
    removed: str = Field(description="the source removed")
    documents: int = Field(description="documents left in the collection")
    chunks: int = Field(description="chunks left in the collection")


class Health(BaseModel):
    status: Literal["ok"]
    documents: int = Field(description="indexed documents")
    chunks: int = Field(description="indexed chunks")


class Error(BaseModel):
    error: str = Field(description="what is wrong, in one line")


_ERRORS = {
    400: "bad request: an empty question, an llm this server does not offer, or a document that cannot be removed "
         "(a folder collection, a bad name)",
    401: "QA_TOKEN is set and the request lacks `Authorization: Bearer TOKEN`",
    404: "unknown source, collection, conversation or route",
    405: "wrong method for this route",
    413: "request body over 1 MB",
    422: "invalid request: wrong type, unknown field, or over a limit (20 history turns of 4,000 characters)",
    503: "the index is missing, damaged or busy",
}


def error_responses(*codes: int) -> dict[int, dict]:
    """OpenAPI entries for the errors a route can answer: all are JSON {"error": "..."}."""
    return {code: {"model": Error, "description": _ERRORS[code]} for code in codes}
