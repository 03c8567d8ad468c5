"""Shortlisting large collections by compact copies of their vectors (rag.quantized, rag.exact): what it keeps
of the exact ranking, and that it stays in step with the store."""

from __future__ import annotations

import numpy as np
import pytest

from rag import quantized
from rag.index import DocumentIndex
from rag.quantized import QuantizedVectors
from rag.types import Chunk, ChunkMetadata


def _clustered(rng: np.random.Generator, n: int, dims: int = 64, clusters: int = 20) -> np.ndarray:
    """Unit vectors around a common component and a few topics, like text embeddings (not uniform noise)."""
    common = rng.standard_normal(dims)
    topics = rng.standard_normal((clusters, dims))
    vectors = 3 * common + 2 * topics[rng.integers(0, clusters, n)] + rng.standard_normal((n, dims))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_the_binary_stage_keeps_the_codes_nearest_by_weighted_hamming_distance():
    rng = np.random.default_rng(1)
    matrix = _clustered(rng, 3000, dims=72)  # 72 dimensions: the codes' second word is padded
    compact = QuantizedVectors.encode(matrix)
    assert compact.codes.shape == (2, 3000) and compact.small.shape == (3000, 72)
    assert np.allclose(compact.centre, matrix.mean(axis=0), atol=1e-5)
    assert np.abs(compact.small.astype(np.float32) / compact.scale - matrix).max() < 0.01  # int8 copies
    query = matrix[7] + 0.1 * rng.standard_normal(72).astype(np.float32)
    bits = np.unpackbits(compact.codes.T.copy().view(np.uint8), axis=1)[:, :72].astype(bool)
    offset = query - compact.centre
    strong = np.abs(offset) >= np.median(np.abs(offset))
    distance = ((bits != (offset > 0)) * (1 + strong)).sum(axis=1)  # mismatches on strong dimensions count twice
    near = compact._nearest_codes(query, 50, None)
    assert len(near) >= 50 and distance[near].max() <= np.sort(distance)[49]  # ties at the cut kept
    assert set(np.flatnonzero(distance < distance[near].max())) <= set(near)
    rows = np.arange(0, 3000, 3)
    restricted = compact.shortlist(query, 5, rows)
    assert set(restricted) <= set(rows) and len(restricted) == 4 * 5 and list(restricted) == sorted(restricted)


def test_copies_of_a_memory_mapped_matrix_equal_those_of_the_array(tmp_path):
    matrix = _clustered(np.random.default_rng(2), 1000)
    np.save(tmp_path / "m.npy", matrix)
    mapped = np.load(tmp_path / "m.npy", mmap_mode="r")
    a, b = QuantizedVectors.encode(mapped), QuantizedVectors.encode(matrix)
    assert np.array_equal(a.codes, b.codes) and np.array_equal(a.small, b.small)
    appended = QuantizedVectors.encode(matrix[:600]).append(matrix[600:])
    assert len(appended) == 1000 and appended.small.shape == (1000, 64)
    assert np.array_equal(appended.take(np.arange(600, 1000)).codes, appended.codes[:, 600:])


def _chunks(n: int) -> list[Chunk]:
    return [Chunk(f"c{i:05d}", f"frase {i}", ChunkMetadata(source=f"doc{i % 7}.txt", page=1, doc_id=f"d{i % 7}",
                                                           ordinal=i, language="es")) for i in range(n)]


def test_shortlisted_search_finds_nearly_the_exact_top_and_scores_it_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(quantized, "SHORTLIST_MIN", 400)
    rng = np.random.default_rng(3)
    vectors = _clustered(rng, 4000)
    chunks = _chunks(4000)
    index = DocumentIndex(tmp_path / "idx", shortlist_above=1000)
    index.add(chunks, vectors, model_id="m")
    full = DocumentIndex(tmp_path / "idx", shortlist_above=0)  # the same store, searched by the full product
    queries = vectors[rng.integers(0, 4000, 40)] + 0.3 * rng.standard_normal((40, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    overlap = []
    for query in queries:
        short, whole = index.search_dense(query, 10), full.search_dense(query, 10)
        assert all(abs(float(vectors[int(cid[1:])] @ query) - score) < 1e-5 for cid, score in short)  # exact
        assert [s for _, s in short] == sorted((s for _, s in short), reverse=True)
        overlap.append(len({c for c, _ in short} & {c for c, _ in whole}) / 10)
    assert index.exact._codes is not None
    # 400 of 4,000 rows ranked by int8, 40 scored exactly. These vectors are harder than real ones (the recall
    # on SciFact's sentence vectors is in docs/scale.md): only a sanity bound here.
    assert np.mean(overlap) >= 0.8, overlap

    # Filters restrict the shortlist; deletes and adds keep the codes in step.
    allowed = {c.id for c in chunks if c.metadata.doc_id == "d3"}
    found = index.search_dense(queries[0], 10, allowed=allowed)
    assert {c for c, _ in found} <= allowed and len(found) == 10
    index.delete([found[0][0]])
    extra = _chunks(4001)[-1:]
    index.add(extra, queries[:1], model_id="m")
    assert index.search_dense(queries[0], 1) == [(extra[0].id, pytest.approx(1.0, abs=1e-5))]
    assert found[0][0] not in {c for c, _ in index.search_dense(queries[0], 50)}
    assert len(index.exact._codes) == len(index.exact._ids)

    # The codes are saved with the cache: a reopened index does not encode again.
    index.save()
    encoded = []
    monkeypatch.setattr(QuantizedVectors, "encode", classmethod(lambda cls, m: encoded.append(1)))
    reopened = DocumentIndex(tmp_path / "idx", shortlist_above=1000)
    again = reopened.search_dense(queries[3], 10)
    assert encoded == [] and again == index.search_dense(queries[3], 10)


def test_an_index_built_from_nothing_keeps_its_matrices_in_step_and_saves_them(tmp_path, monkeypatch):
    """A fresh index holds its vectors as they are added (amortised growth), so neither its first search nor
    a reopened index reads them back out of Chroma; above the threshold the compact copies are saved too."""
    from rag.vectorstore import ChromaStore

    reads: list[int] = []
    real_vectors = ChromaStore.vectors
    monkeypatch.setattr(ChromaStore, "vectors", lambda self, ids: reads.append(len(ids)) or real_vectors(self, ids))
    vectors = _clustered(np.random.default_rng(4), 3000)
    chunks = _chunks(3000)
    index = DocumentIndex(tmp_path / "idx", shortlist_above=1000)
    for start in range(0, 3000, 400):
        index.add(chunks[start:start + 400], vectors[start:start + 400], model_id="m")
    found = index.search_dense(vectors[5], 5)
    assert found[0] == (chunks[5].id, pytest.approx(1.0, abs=1e-5)) and reads == []
    assert len(index.search_dense(vectors[5], 5, windows=True)) == 5 and reads == []
    index.save()
    with np.load(tmp_path / "idx" / "exact-documents.npz") as data:
        assert {"small_file", "codes", "centre", "scale"} <= set(data.files) and data["codes"].shape[1] == 3000
    int8 = [p.name for p in (tmp_path / "idx").glob("exact-documents.*.int8.npy") if ".windows." not in p.name]
    assert len(int8) == 1  # earlier saves' copies removed
    reopened = DocumentIndex(tmp_path / "idx", shortlist_above=1000)
    assert reopened.search_dense(vectors[5], 5) == found and reads == []
    # Its matrix is the mapped file, so the rows scored exactly were read from the file (pread), not the mapping.
    assert isinstance(reopened.exact._matrix, np.memmap) and reopened.exact._file[0] is reopened.exact._matrix
    assert reopened.exact._codes is not None and len(reopened.exact._codes) == 3000
    assert isinstance(reopened.exact._codes.small, np.memmap)  # mapped, read as shortlists touch it
