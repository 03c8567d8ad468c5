"""The retrieval backend Protocol: the same checks on every backend, embedded Chroma, a Chroma server and Milvus
Lite; Milvus's filters against the local index's; Milvus unreachable; Milvus Lite kept offline."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from milvus_lite import server_manager_instance

from rag.backend import RetrievalBackend
from rag.backend import open_backend as backend_for
from rag.index import DocumentIndex
from rag.milvus import MilvusBackend, MilvusUnavailable, milvus_filter
from rag.retriever import Filters
from rag.settings import Settings
from rag.types import Chunk, ChunkMetadata, ElementType
from tests.conftest import ROOT, free_port
from tests.test_offline_trace import _namespaces_work, parse_connects

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


@pytest.fixture(params=["embedded", "server", "milvus"])
def open_backend(request, tmp_path):
    """A function opening the backend under test on the same storage each time (as a restart would)."""
    if request.param == "milvus":
        lite = _LiteFolder(tmp_path / "milvus.db")
        yield lite.open
        lite.close()
        return
    url = request.getfixturevalue("chroma_url") if request.param == "server" else None
    yield lambda: DocumentIndex(tmp_path / "index", chroma_url=url)


class _LiteFolder:
    """Opens ``MilvusBackend`` on one Milvus Lite folder; each open stops the Lite server the last one started (as
    a process exit would), so that the new one reads what was kept on disk."""

    def __init__(self, path) -> None:
        self.path, self.backend = str(path), None

    def open(self) -> MilvusBackend:
        self.close()
        self.backend = MilvusBackend(self.path)
        return self.backend

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            server_manager_instance.release_server(self.path)
            self.backend = None


def test_a_backend_adds_finds_filters_deletes_and_keeps_what_it_saved(open_backend, dense):
    backend = open_backend()
    assert isinstance(backend, RetrievalBackend)
    chunks = _chunks()
    by_text = {c.text: c for c in chunks}
    backend.add(chunks, dense.embed([c.text for c in chunks]), model_id=dense.model_id)
    assert backend.count() == 6 and backend.windowed() and backend.vector_model == dense.model_id
    assert sorted(backend.ids()) == sorted(c.id for c in chunks)
    assert set(backend.get([chunks[0].id, "no-such-id"])) == {chunks[0].id}
    assert backend.get([c.id for c in chunks]) == {c.id: c for c in chunks}  # the chunks as they were added
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
    assert sorted(reopened.ids()) == sorted(c.id for c in chunks if c.id != error)
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


def _varied_chunks() -> list[Chunk]:
    """Chunks whose metadata vary the way the filters read them: sources, pages (some none), element types,
    languages (some none), OCR flags, list lead-ins."""
    chunks = []
    kinds = [ElementType.TEXT, ElementType.TABLE, ElementType.TITLE, ElementType.LIST]
    for d, source in enumerate(["ley.pdf", "manual.pdf", "notas.docx", "tabla.xlsx"]):
        for ordinal in range(6):
            text = f"{source} fragmento {ordinal}: plazo de {ordinal + d} meses para el recurso"
            meta = ChunkMetadata(source=source, doc_id=f"doc{d}", ordinal=ordinal,
                                 element_type=kinds[(d + ordinal) % 4],
                                 page=None if source.endswith(".docx") else ordinal // 2 + 1,
                                 language=None if d == 3 else ("es" if d % 2 == 0 else "en"),
                                 ocr=True if ordinal == 5 else None,
                                 lead_in="Son requisitos:" if ordinal in (2, 3) else None,
                                 file_mtime=1_700_000_000.5 + ordinal)
            chunks.append(Chunk(Chunk.make_id(meta.doc_id, ordinal, text), text, meta))
    return chunks


FILTERS = [
    {"source": {"$in": ["ley.pdf", "notas.docx"]}},
    {"source": "manual.pdf"},
    {"page": {"$gte": 2}},
    {"$and": [{"page": {"$gte": 2}}, {"page": {"$lte": 2}}]},
    {"element_type": {"$in": ["table", "title"]}},
    {"$and": [{"source": {"$in": ["ley.pdf", "manual.pdf", "tabla.xlsx"]}}, {"element_type": {"$in": ["text", "list"]}},
              {"page": {"$gte": 1}}, {"page": {"$lte": 2}}]},
    Filters(sources=("ley.pdf", "tabla.xlsx"), element_types=("text", "table"), page_min=2, page_max=3).to_where(),
    Filters(page_max=1).to_where(),
    {"$or": [{"source": "ley.pdf"}, {"page": {"$gt": 2}}]},
    {"page": {"$ne": 2}},  # a chunk without a page passes $ne and $nin (Chroma's rule)
    {"source": {"$nin": ["ley.pdf"]}},
    {"language": {"$nin": ["en"]}},
    {"language": {"$in": ["es"]}},
    {"ocr": True},
    {"ordinal": {"$lt": 2}, "doc_id": "doc1"},
    {"$and": [{"doc_id": "doc0"}, {"lead_in": "Son requisitos:"}]},
    {"file_mtime": {"$gte": 1_700_000_003}},
]
# Filters at the edges of the syntax: empty lists, a number beyond 64 bits, a float against an integer field,
# a string that needs escaping.
EDGE_FILTERS = [{"source": {"$in": []}}, {"source": {"$nin": []}}, {"page": {"$lt": 2**70}},
                {"ordinal": {"$gte": 2.5}}, {"source": 'a"b\\c'}]


def test_milvus_filters_select_the_same_chunks_as_the_local_index(tmp_path):
    chunks = _varied_chunks()
    vectors = np.random.default_rng(7).normal(size=(len(chunks), 8)).astype(np.float32)
    local, milvus = DocumentIndex(tmp_path / "index"), MilvusBackend(str(tmp_path / "milvus.db"))
    try:
        for backend in (local, milvus):
            backend.add(chunks, vectors, model_id="test-model")
        query = vectors[3] + 0.1
        terms = [t for lang in ("es", "en") for t in milvus.analyzer(lang).terms("plazo recurso")]  # in every chunk
        selected = []
        for where in FILTERS + EDGE_FILTERS:
            expected = local.allowed(where)
            selected.append(len(expected))
            assert milvus.allowed(where) == expected, (where, milvus_filter(where))
            # the same filter applied by Milvus inside a search: the same chunks as searching the allowed ids
            found = {cid for cid, _ in milvus.search_dense(query, len(chunks), where=where)}
            assert found == {cid for cid, _ in milvus.search_dense(query, len(chunks), allowed=expected)} == expected
            assert {cid for cid, _ in milvus.search_bm25(terms, len(chunks), where=where, windows=True)} == expected
        assert all(0 < n < len(chunks) for n in selected[:len(FILTERS)])  # each filter tells chunks apart
        with pytest.raises(ValueError, match="page"):
            milvus.allowed({"page": "2"})  # a page is a number
        with pytest.raises(ValueError, match="colour"):
            milvus.allowed({"colour": "red"})  # no such metadata field
    finally:
        milvus.close()


def test_milvus_unreachable_is_one_clear_error_naming_the_uri_and_no_secret():
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(MilvusUnavailable) as caught:
        MilvusBackend(uri, token="s3cret-milvus-token")
    assert time.monotonic() - started < 10
    assert caught.value.uri == uri and uri in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(MilvusUnavailable) as caught:
        MilvusBackend(uri.replace("//", "//admin:s3cret-password@"))
    assert "s3cret" not in str(caught.value) and "***@127.0.0.1" in str(caught.value)
    with pytest.raises(MilvusUnavailable, match="127.0.0.1"):
        backend_for(Settings(backend="milvus", milvus_uri=uri))
    with pytest.raises(ValueError, match=r"\.db"):
        MilvusBackend("/tmp/index/milvus")  # a Lite path without .db would be taken for nothing pymilvus knows


def test_the_backend_setting_picks_the_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_BACKEND", "milvus")
    monkeypatch.setenv("RAG_MILVUS_TOKEN", "s3cret-milvus-token")
    settings = Settings(index_dir=tmp_path / "index")
    assert settings.backend == "milvus" and settings.milvus_uri is None
    assert "s3cret" not in json.dumps(settings.public_dump()) + repr(settings)
    backend = backend_for(settings)  # Milvus Lite in the index folder (a token means nothing to it)
    try:
        assert isinstance(backend, MilvusBackend) and backend.lite and backend.count() == 0
        assert (tmp_path / "index" / "milvus.db").is_dir() and backend.name == "rag_documents"
        legal = backend_for(settings.for_collection("legal"))
        assert legal.name == "rag_documents_2dlegal" and legal.uri.startswith(str(tmp_path / "index"))
        legal.close()
    finally:
        backend.close()
    monkeypatch.setenv("RAG_BACKEND", "local")
    assert isinstance(backend_for(Settings(index_dir=tmp_path / "index")), DocumentIndex)


_LITE_RUN = r"""
import sys
import numpy as np
from rag.milvus import MilvusBackend
from tests.test_backend import _varied_chunks
chunks = _varied_chunks()
vectors = np.random.default_rng(1).normal(size=(len(chunks), 8)).astype(np.float32)
backend = MilvusBackend(sys.argv[1])
backend.add(chunks, vectors, model_id="test-model")
assert backend.search_dense(vectors[0], 1)[0][0] == chunks[0].id
assert backend.search_bm25(["plaz"], 3, where={"source": "ley.pdf"})
backend.save()
print(backend.count())
"""


@pytest.mark.skipif(_namespaces_work() is not None, reason=_namespaces_work() or "")
def test_milvus_lite_connects_to_nothing_but_loopback_even_with_a_proxy_set(tmp_path):
    """Milvus Lite runs in the process and serves the client over gRPC on 127.0.0.1; with ``http_proxy`` set,
    gRPC would send that traffic to the proxy unless told not to. Traced as tests/test_offline_trace.py does."""
    env = {**os.environ, "http_proxy": "http://10.9.9.9:3128", "https_proxy": "http://10.9.9.9:3128"}
    trace = tmp_path / "lite.trace"
    script = ("ip link set lo up && exec strace -f -qq --seccomp-bpf -e trace=connect -o \"$TRACE\" "
              "\"$PY\" -c \"$RUN\" \"$DB\"")
    run = subprocess.run(["unshare", "-rn", "bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={**env, "TRACE": str(trace), "PY": sys.executable, "RUN": _LITE_RUN,
                                           "DB": str(tmp_path / "milvus.db")})
    assert run.returncode == 0 and run.stdout.split() == ["24"], run.stderr[-3000:]
    connects = parse_connects(trace.read_text())
    assert any(c.address.endswith("127.0.0.1") for c in connects)  # the trace sees the client reach Milvus Lite
    assert [c.line for c in connects if not c.allowed] == []
