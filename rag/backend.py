"""The retrieval backend: what the query side needs from an index, whatever engine holds it.

``rag.index.DocumentIndex`` (Chroma for chunks and vectors, ``rag.bm25`` for terms, ``rag.exact`` for exact
dense search) is the one implementation; ``docs/scale.md`` says when another engine would be needed and what it
must pass (``tests/test_backend.py`` runs the same checks on every backend it is given).

Filters use Chroma's ``where`` syntax (``{"source": {"$in": [...]}}``, ``$and``, ``$gte``...), the shape
``rag.retriever.Filters.to_where`` produces; a backend on another engine translates it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.analysis import Analyzer
from rag.types import Chunk


@runtime_checkable
class RetrievalBackend(Protocol):
    """Chunks with their vectors and terms: add, delete, count, fetch, filter, dense and sparse search.

    Searches return (chunk id, score) pairs, best first; ``allowed`` restricts them to those ids, and
    ``windows=True`` searches the sentence-window units (each standing for its sentence) instead of the chunks.
    """

    # Writers hold it while they change the index; a reader holding it sees no document half changed.
    lock: AbstractContextManager[Any]
    # The model that made the stored vectors (None: not recorded); ``legacy``: an index older than that record.
    vector_model: str | None
    legacy: bool

    def add(self, chunks: list[Chunk], embeddings: np.ndarray, model_id: str | None = None) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def count(self) -> int: ...

    def windowed(self) -> bool: ...

    def get(self, ids: list[str]) -> dict[str, Chunk]: ...

    def allowed(self, where: dict[str, Any]) -> set[str]: ...

    def analyzer(self, language: str | None) -> Analyzer: ...

    def search_dense(self, vector: np.ndarray, n: int, allowed: set[str] | None = None, windows: bool = False,
                     approximate: bool = False) -> list[tuple[str, float]]: ...

    def search_bm25(self, terms: list[str], n: int, allowed: set[str] | None = None,
                    windows: bool = False) -> list[tuple[str, float]]: ...

    def idf(self, terms: list[str]) -> dict[str, float]: ...

    def save(self, vectors: bool = True) -> None: ...
