import numpy as np

from index.embed import NumpyBertEncoder, OnnxEncoder, embed_documents, load_batch_encoder, model_path

VARIED = ["Which drug killed Daniel Whitworth?", "Port, 42, was handed a whole life term.", "word " * 400,
          "Ünïcödé façade — naïve café, 東京 2024-03-01.", "def f(x):\n    return x ** 2  # code", "12,400 £ 8% ±3",
          "A", "The ferry carried 12,400 passengers in 2023, up 8 percent on the year before."]


def _reference(texts):
    return load_batch_encoder(model_path(None)).encode(texts, normalize_embeddings=True)


def test_query_and_index_encoders_match_sentence_transformers():
    path = model_path(None)
    reference = _reference(VARIED)
    for encoder in (NumpyBertEncoder(path), OnnxEncoder(path)):
        got = encoder.encode(VARIED)
        assert got.shape == reference.shape == (len(VARIED), 384)
        assert (got * reference).sum(1).min() >= 0.99  # the bar; fp32 gives ~1 - 1e-6
        np.testing.assert_allclose((got * reference).sum(1), 1.0, atol=1e-4)


def test_batched_embedding_keeps_order_and_pads_without_changing_vectors():
    path = model_path(None)
    texts = VARIED * 9  # several batches of mixed lengths
    batched = embed_documents(path, texts, batch_size=8)
    one_by_one = np.stack([OnnxEncoder(path).encode([t])[0] for t in texts[:len(VARIED)]])
    np.testing.assert_allclose((batched[:len(VARIED)] * one_by_one).sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched[:len(VARIED)], batched[len(VARIED):2 * len(VARIED)], atol=1e-6)


def test_sentence_vectors_come_from_the_chunk_pass():
    from index.chunk import split_sentences
    from index.embed import embed_chunks

    path = model_path(None)
    text = "The ferry carried 12,400 passengers in 2023. Revenue rose by 8 percent. The harbour master resigned."
    spans = split_sentences(text)
    matrix = embed_chunks(path, [text], [spans])[0]
    assert matrix.shape == (1 + len(spans), 384)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    chunk_alone = OnnxEncoder(path).encode([text])[0]
    assert float(matrix[0] @ chunk_alone) > 0.9999
    question = OnnxEncoder(path).encode(["How many passengers did the ferry carry?"])[0]
    # Each sentence is read in its paragraph, yet the one that answers is still the closest.
    assert int(np.argmax(matrix[1:] @ question)) == 0
    single = embed_chunks(path, ["One short sentence."], [[(0, 19)]])[0]
    assert float(single[0] @ single[1]) > 0.999


def test_the_mapped_model_weights_equal_the_copied_ones_and_a_damaged_file_is_left_to_the_copying_loader(tmp_path):
    # A cold `qa ask` maps the query encoder's weights instead of copying them (about 80 ms less); they must be
    # the same numbers, and a file that is not what its header says must not be mapped.
    import numpy as np
    from safetensors.numpy import load_file

    from index.config import load_settings
    from index.embed import _mapped_safetensors, model_path

    shipped = model_path(load_settings().embed_model) / "model.safetensors"
    mapped, copied = _mapped_safetensors(shipped), load_file(str(shipped))
    assert set(mapped) == set(copied) and all(np.array_equal(mapped[k], copied[k]) for k in copied)
    truncated = tmp_path / "model.safetensors"
    truncated.write_bytes(shipped.read_bytes()[:100_000])
    assert _mapped_safetensors(truncated) is None
    (tmp_path / "empty.safetensors").write_bytes(b"")
    assert _mapped_safetensors(tmp_path / "empty.safetensors") is None
