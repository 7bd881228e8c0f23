import pytest

from qa.retrieve import CorpusIndex, fuse_rankings

QUESTIONS = ["Which drug killed Daniel Whitworth?", "How many officers are being investigated?", "weather in Barking",
             "IPCC commissioner", "Stephen Port sentence"]


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = fuse_rankings([["a", "b", "c"], ["b", "c", "a"]], k=60)
    assert [item for item, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


@pytest.mark.parametrize("question", QUESTIONS)
def test_fast_start_vector_copy_ranks_like_chroma(seed_settings, question):
    chroma, copy = CorpusIndex(seed_settings), CorpusIndex(seed_settings, fast_start=True)
    assert copy.vector_copy(), "qa index should have written vectors.npy"
    vector = chroma.embed(question)
    from_chroma, from_copy = chroma.dense_search(vector, 10), copy.dense_search(vector, 10)
    assert [cid for cid, _ in from_copy] == [cid for cid, _ in from_chroma]
    assert [s for _, s in from_copy] == pytest.approx([s for _, s in from_chroma], abs=1e-4)


def test_stale_vector_copy_is_not_used(seed_settings):
    index = CorpusIndex(seed_settings, fast_start=True)
    index.meta = {**index.meta, "generation": "another-run"}
    assert index.vector_copy() is False
    assert index.dense_search(index.embed("GHB"), 3)  # falls back to Chroma


def test_the_chroma_collection_is_a_complete_langchain_store(seed_settings):
    """Others may open the collection with langchain_chroma.Chroma: texts and offsets are there, and exact."""
    from langchain_chroma import Chroma

    from index.store import open_chroma

    index = CorpusIndex(seed_settings)

    class Embeddings:
        def embed_query(self, text):
            return index.embed(text).tolist()

        def embed_documents(self, texts):
            return [self.embed_query(t) for t in texts]

    store = Chroma(client=open_chroma(seed_settings), collection_name=index.meta["collection"],
                   embedding_function=Embeddings())
    hits = store.similarity_search("Which drug killed Daniel Whitworth?", k=3)
    assert len(hits) == 3
    for doc in hits:
        m = doc.metadata
        assert doc.page_content and index.document_text(m["source"])[m["start"]:m["end"]] == doc.page_content
