import numpy as np

from index.embed import NumpyBertEncoder, embed_documents, model_path


def test_numpy_query_encoder_matches_sentence_transformers():
    path = model_path(None)
    texts = ["Which drug killed Daniel Whitworth?", "Port, 42, was handed a whole life term.", "word " * 400]
    fast = NumpyBertEncoder(path).encode(texts)
    reference = embed_documents(path, texts)
    assert fast.shape == reference.shape == (3, 384)
    np.testing.assert_allclose((fast * reference).sum(1), 1.0, atol=1e-5)
