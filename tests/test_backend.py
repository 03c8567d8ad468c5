"""The retrieval backend Protocol: the same checks on every backend, embedded Chroma and a Chroma server."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rag.backend import RetrievalBackend
from rag.index import DocumentIndex
from rag.types import Chunk, ChunkMetadata, ElementType
from tests.conftest import ROOT

SENTENCES = {
    "ley.pdf": ["El plazo máximo para resolver y notificar el procedimiento es de tres meses.",
                "Transcurrido el plazo sin resolución expresa, la solicitud se entiende desestimada.",
                "El recurso de alzada podrá interponerse en el plazo de un mes."],
    "manual.pdf": ["Error E7 means the C wire of the thermostat is not connected.",
                   "Press and hold the mode button for five seconds to reset the device.",
                   "The warranty covers manufacturing defects for two years."],
}


def _chunks() -> list[Chunk]:
    chunks = []
    for source, sentences in SENTENCES.items():
        language = "es" if source == "ley.pdf" else "en"
        for ordinal, text in enumerate(sentences):
            window = " ".join(sentences[max(0, ordinal - 1):ordinal + 2])
            meta = ChunkMetadata(source=source, page=ordinal + 1, doc_id=source, ordinal=ordinal, window=window,
                                 language=language, chunker="sentence-window", chunker_params=json.dumps({"window": 1}),
                                 element_type=ElementType.TEXT)
            chunks.append(Chunk(Chunk.make_id(source, ordinal, text), text, meta))
    return chunks


@pytest.fixture(params=["embedded", "server"])
def open_backend(request, tmp_path):
    """A function opening the backend under test on the same storage each time (as a restart would)."""
    url = request.getfixturevalue("chroma_url") if request.param == "server" else None
    return lambda: DocumentIndex(tmp_path / "index", chroma_url=url)


def test_a_backend_adds_finds_filters_deletes_and_keeps_what_it_saved(open_backend, dense):
    backend = open_backend()
    assert isinstance(backend, RetrievalBackend)
    chunks = _chunks()
    by_text = {c.text: c for c in chunks}
    backend.add(chunks, dense.embed([c.text for c in chunks]), model_id=dense.model_id)
    assert backend.count() == 6 and backend.windowed() and backend.vector_model == dense.model_id
    assert set(backend.get([chunks[0].id, "no-such-id"])) == {chunks[0].id}
    assert backend.get([chunks[4].id])[chunks[4].id].metadata.page == 2
    law = {c.id for c in chunks if c.metadata.source == "ley.pdf"}
    assert backend.allowed({"source": {"$in": ["ley.pdf"]}}) == law
    assert backend.allowed({"$and": [{"source": {"$in": ["ley.pdf"]}}, {"page": {"$gte": 3}}]}) == {chunks[2].id}

    error = by_text[SENTENCES["manual.pdf"][0]].id
    terms = backend.analyzer("en").terms("what does error E7 mean")
    for windows in (False, True):
        assert backend.search_bm25(terms, 3, windows=windows)[0][0] == error
        assert backend.search_bm25(terms, 3, allowed=law, windows=windows) == []
    question = dense.embed_queries(["¿Qué pasa si no me contestan en plazo?"])[0]
    silence = by_text[SENTENCES["ley.pdf"][1]].id
    for approximate in (False, True):
        found = backend.search_dense(question, 3, approximate=approximate)
        assert found[0][0] == silence and -1.0 <= found[0][1] <= 1.0
        assert {cid for cid, _ in backend.search_dense(question, 6, allowed=law - {silence},
                                                       approximate=approximate)} <= law - {silence}
    idf = backend.idf(["plaz", "e7", "unseen"])
    assert idf["e7"] > idf["plaz"]  # "plazo" is in every sentence of the law, "E7" in one

    backend.delete([error])
    assert backend.count() == 5 and backend.get([error]) == {}
    assert error not in {cid for cid, _ in backend.search_bm25(terms, 6)}
    assert error not in {cid for cid, _ in backend.search_dense(question, 6)}
    backend.save()
    reopened = open_backend()
    assert reopened.count() == 5 and reopened.search_dense(question, 1)[0][0] == silence
    assert reopened.search_bm25(reopened.analyzer("es").terms("recurso de alzada"), 1)[0][0] \
        == by_text[SENTENCES["ley.pdf"][2]].id


def test_a_chroma_server_serves_an_index_written_by_another_process(tmp_path, chroma_url, dense):
    """Chroma's server is the multi-process path: a process writes (here a separate Python), another reads."""
    folder = tmp_path / "index"
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from rag.embedder import dense_embedder\n"
        "from rag.index import DocumentIndex\n"
        "from rag.settings import Settings\n"
        "from tests.test_backend import _chunks\n"
        "dense = dense_embedder(Settings().dense_model, None)\n"
        "index = DocumentIndex(Path(sys.argv[1]), chroma_url=sys.argv[2])\n"
        "chunks = _chunks()\n"
        "index.add(chunks, dense.embed([c.text for c in chunks]), model_id=dense.model_id)\n"
        "index.save()\n")
    run = subprocess.run([sys.executable, "-c", script, str(folder), chroma_url], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not (folder / "chroma").exists()  # the vectors and texts went to the server
    reader = DocumentIndex(folder, chroma_url=chroma_url)
    assert reader.count() == 6
    question = dense.embed_queries(["How do I reset the thermostat?"])[0]
    reset = next(c.id for c in _chunks() if "reset" in c.text)
    assert reader.search_dense(question, 1)[0][0] == reset
    assert np.isclose(reader.search_dense(question, 1, approximate=True)[0][1], reader.search_dense(question, 1)[0][1],
                      atol=1e-3)
