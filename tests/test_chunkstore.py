"""The chunks' text and metadata beside the index (rag.chunkstore): the same answers as Chroma, in step with it
through adds, deletes and interrupted writes, and a question answered without opening Chroma."""

from __future__ import annotations

import numpy as np
import pytest

from rag.chunkstore import ChunkStore
from rag.index import CHUNKS_FILE, DocumentIndex
from rag.retriever import Filters, HybridRetriever
from rag.settings import Settings
from rag.types import Chunk, ChunkMetadata, ElementType
from rag.vectorstore import ChromaStore

FILTERS = [
    {"source": "a.pdf"},
    {"source": {"$in": ["a.pdf", "c.docx"]}},
    {"source": {"$nin": ["a.pdf"]}},
    {"source": {"$ne": "b.md"}},
    {"element_type": {"$in": ["table"]}},
    {"page": {"$gte": 2}},
    {"page": {"$lt": 3}},
    {"page": {"$ne": 2}},
    {"page": {"$nin": [1, 3]}},
    {"$and": [{"page": {"$gte": 2}}, {"page": {"$lte": 3}}]},
    {"$or": [{"source": "b.md"}, {"element_type": "table"}]},
    {"$and": [{"source": {"$in": ["a.pdf", "b.md"]}}, {"$or": [{"page": 1}, {"ordinal": {"$gt": 10}}]}]},
    {"ocr": True},
    {"ocr_confidence": {"$lt": 80.0}},
]


def _chunks() -> list[Chunk]:
    out = []
    for i in range(24):
        source = ("a.pdf", "b.md", "c.docx")[i % 3]
        page = None if source == "b.md" else 1 + i % 4  # a Markdown file has no pages: the field is absent
        kind = ElementType.TABLE if i % 5 == 0 else ElementType.TEXT
        ocr = {"ocr": True, "ocr_confidence": 60.0 + i} if i % 4 == 0 else {}
        text = f"frase número {i} del documento {source}, con acentos y «comillas»"
        out.append(Chunk(f"c{i:03d}", text, ChunkMetadata(source=source, page=page, element_type=kind,
                                                           doc_id=source, ordinal=i, language="es", **ocr)))
    return out


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_filters_select_the_same_chunks_as_chroma(tmp_path):
    chunks = _chunks()
    chroma = ChromaStore(path=tmp_path / "chroma")
    chroma.add(chunks, _vectors(len(chunks)))
    store = ChunkStore(tmp_path / CHUNKS_FILE)
    store.add(chunks, "g1")
    for where in FILTERS:
        expected = set(chroma.ids(where))
        assert set(store.ids(where)) == expected, where
    assert any(store.ids(where) for where in FILTERS) and store.count() == len(chunks)
    # A page bound beyond 64 bits (a request may send one; Chroma refuses the filter) compares as a number.
    paged = {c.id for c in chunks if c.metadata.page is not None}
    assert set(store.ids({"page": {"$lte": 2**63}})) == paged and store.ids({"page": {"$gt": 2**70}}) == []
    assert store.get(["c003", "c001", "missing"]) == chroma.get(["c001", "c003"])  # text and metadata round-trip


@pytest.mark.parametrize("where, named", [
    ({"source": {"$like": "a%"}}, "$like"),
    ({"page": {"$gte": [1, 2]}}, "page"),
    ({"$and": []}, "$and"),
    ({"source; DROP TABLE chunks": "x"}, "DROP TABLE"),
    ({"source": {"$in": "a.pdf"}}, "$in"),
])
def test_a_malformed_filter_is_refused_naming_its_part(tmp_path, where, named):
    store = ChunkStore(tmp_path / CHUNKS_FILE)
    store.add(_chunks(), "g1")
    with pytest.raises(ValueError, match=named.replace("$", r"\$")):
        store.ids(where)
    assert store.count() == 24  # nothing was run against the table


def test_the_index_keeps_the_file_in_step_through_adds_and_deletes(tmp_path):
    chunks = _chunks()
    index = DocumentIndex(tmp_path / "idx")
    index.add(chunks, _vectors(len(chunks)), model_id="test-16")
    index.delete(["c000", "c005"])
    texts = ChunkStore(tmp_path / "idx" / CHUNKS_FILE)
    assert texts.generation == index.generation
    assert set(texts.ids()) == set(index.store.ids()) == {c.id for c in chunks} - {"c000", "c005"}
    assert index.get(["c001"]) == index.store.get(["c001"])
    where = Filters(sources=("a.pdf",), page_min=2).to_where()
    assert index.allowed(where) == set(index.store.ids(where)) and index.count() == 22


def test_a_file_behind_the_store_is_filled_again_from_chroma(tmp_path):
    chunks = _chunks()
    index = DocumentIndex(tmp_path / "idx")
    index.add(chunks[:12], _vectors(12), model_id="test-16")
    # A run killed after writing Chroma and before the file: Chroma has chunks the file lacks.
    index.renew_generation()
    index.store.add(chunks[12:], _vectors(12, seed=1))
    (tmp_path / "idx" / "stale").write_text("")
    reopened = DocumentIndex(tmp_path / "idx")
    assert reopened.count() == 24 and set(reopened.get([c.id for c in chunks])) == {c.id for c in chunks}
    assert ChunkStore(tmp_path / "idx" / CHUNKS_FILE).generation == reopened.generation
    # An index from before the file: made on first use, from Chroma.
    (tmp_path / "idx" / CHUNKS_FILE).unlink()
    for extra in ("-wal", "-shm"):
        (tmp_path / "idx" / (CHUNKS_FILE + extra)).unlink(missing_ok=True)
    older = DocumentIndex(tmp_path / "idx")
    assert older.get(["c020"])["c020"].text == chunks[20].text and older.count() == 24


class _NoQueryEmbedder:
    model_id = "test-16"

    def embed(self, texts: list[str]) -> np.ndarray:
        return _vectors(len(texts), seed=7)


def test_a_question_is_answered_without_opening_chroma(tmp_path, monkeypatch):
    chunks = _chunks()
    index = DocumentIndex(tmp_path / "idx")
    index.add(chunks, _vectors(len(chunks)), model_id="test-16")
    index.save()

    def refuse(self):
        raise AssertionError(f"Chroma opened for {self.name}")

    monkeypatch.setattr(ChromaStore, "_connect", refuse)
    settings = Settings(index_dir=tmp_path / "idx", dense_languages=["es"])
    reopened = DocumentIndex.from_settings(settings)
    retriever = HybridRetriever.from_settings(reopened, _NoQueryEmbedder(), settings)
    hits = retriever.retrieve("frase número 7 del documento", "es", top_k=5).hits
    assert hits and all(h.chunk.text.startswith("frase número") for h in hits)
    filtered = retriever.retrieve("frase número", "es", top_k=5, filters=Filters(sources=("b.md",))).hits
    assert filtered and {h.chunk.metadata.source for h in filtered} == {"b.md"}
    assert reopened.count() == 24
    with pytest.raises(AssertionError, match="Chroma opened"):  # a write still goes to Chroma first
        reopened.delete(["c001"])
