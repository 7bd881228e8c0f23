"""The LangChain face over a real index of seeds/: LangChain's own standard retriever tests, and the chain
as a user composes it (a string or a dict in, a message that pipes into StrOutputParser out)."""

import pytest
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_tests.integration_tests import RetrieversIntegrationTests

from index.errors import UsageError
from qa.chain import AskInput, HybridRetriever, answer_of, build_chain

pytestmark = pytest.mark.slow
QUESTION = "Which drug killed Daniel Whitworth?"


class TestHybridRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's standard retriever tests (k in the constructor and in invoke, sync and async)."""

    @pytest.fixture(autouse=True)
    def _seed_qa(self, seed_qa):
        self.qa = seed_qa

    @property
    def retriever_constructor(self) -> type[HybridRetriever]:
        return HybridRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"qa": self.qa}

    @property
    def retriever_query_example(self) -> str:
        return QUESTION


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_retrieves_nothing(seed_qa, query):
    retriever = HybridRetriever(qa=seed_qa)
    assert retriever.invoke(query) == [] and retriever.invoke(query, k=3) == []


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_retrieved_documents_slice_their_source_exactly(seed_qa, mode):
    docs = HybridRetriever(qa=seed_qa, k=5).invoke(QUESTION, k=4, mode=mode)
    assert len(docs) == 4
    for doc in docs:
        m = doc.metadata
        assert seed_qa.source_text(m["source"])[m["start"]:m["end"]] == doc.page_content
        assert doc.id == m["chunk_id"]


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"k": 51}, {"mode": "magic"}])
def test_retriever_refuses_bad_settings(seed_qa, kwargs):
    with pytest.raises(UsageError):
        HybridRetriever(qa=seed_qa).invoke(QUESTION, **kwargs)


def test_chain_takes_a_string_or_a_dict_and_answers_like_qa_ask(seed_qa):
    chain = build_chain(seed_qa)
    from_string, from_dict = chain.invoke(QUESTION), chain.invoke({"question": QUESTION})
    assert isinstance(from_string, AIMessage) and "GHB [1]" in from_string.content
    expected = seed_qa.ask(QUESTION).to_json()
    for message in (from_string, from_dict, chain.invoke(AskInput(question=QUESTION))):
        answer = message.response_metadata["answer"]
        assert message.content == answer["answer"]
        assert {**answer, "timings_ms": None} == {**expected, "timings_ms": None}


def test_chain_output_pipes_into_str_output_parser(seed_qa):
    text = (build_chain(seed_qa) | StrOutputParser()).invoke(
        {"question": "How old was he?", "history": [(QUESTION, "GHB")]})
    assert isinstance(text, str) and "21" in text and "[1]" in text


def test_chain_message_carries_exact_citations(seed_qa):
    answer = answer_of(build_chain(seed_qa).invoke({"question": "How old was he?", "history": [[QUESTION, "GHB"]]}))
    assert answer.search_query == "How old was Daniel Whitworth?" and answer.citations
    for c in answer.citations:
        assert seed_qa.source_text(c.source)[c.start:c.end] == c.text


def test_chain_input_schema_is_typed(seed_qa):
    schema = build_chain(seed_qa, k=3, mode="lexical").get_input_jsonschema()
    props = schema["properties"]
    assert schema["required"] == ["question"] and props["question"]["type"] == "string"
    assert props["history"]["items"]["prefixItems"] == [{"type": "string"}, {"type": "string"}]
    assert props["k"] == {**props["k"], "type": "integer", "default": 3, "minimum": 1}
    assert props["mode"]["enum"] == ["hybrid", "dense", "lexical"] and props["mode"]["default"] == "lexical"
    assert build_chain(seed_qa).get_output_jsonschema()["title"] == "AIMessage"


def test_chain_defaults_apply_and_inputs_override_them(seed_qa):
    chain = build_chain(seed_qa, k=2, mode="lexical")
    assert len(chain.invoke(QUESTION).response_metadata["answer"]["passages"]) == 2
    assert len(chain.invoke({"question": QUESTION, "k": 4}).response_metadata["answer"]["passages"]) == 4


def test_stream_yields_the_finished_answer_once(seed_qa):
    """The extractive answer exists only when complete: one chunk, not a replay of it in pieces."""
    chain = build_chain(seed_qa)
    chunks = list(chain.stream(QUESTION))
    assert len(chunks) == 1 and chunks[0].content == chain.invoke(QUESTION).content
    assert list((chain | StrOutputParser()).stream(QUESTION)) == [chunks[0].content]


async def test_chain_runs_async(seed_qa):
    message = await build_chain(seed_qa).ainvoke(QUESTION)
    assert "GHB [1]" in message.content


@pytest.mark.parametrize("value", [
    "", "   ", {"question": ""}, {"question": 42}, {"question": "hi", "k": 0}, {"question": "hi", "k": "many"},
    {"question": "hi", "mode": "magic"}, {"question": "hi", "history": "x"}, {"question": "hi", "history": [["a"]]},
    {"question": "hi", "extra": 1}, {"history": []}, {"question": "x" * 5000},
])
def test_bad_chain_input_is_a_usage_error(seed_qa, value):
    with pytest.raises(UsageError):
        build_chain(seed_qa).invoke(value)
