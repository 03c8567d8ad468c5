"""The retrieval backend: what the query side needs from an index, whatever engine holds it.

Two implementations: ``rag.index.DocumentIndex`` (Chroma for chunks and vectors, ``rag.bm25`` for terms,
``rag.exact`` for exact dense search), the default for one machine, and ``rag.milvus.MilvusBackend`` (a Milvus
server or cluster, or Milvus Lite in the process; issue 36), which ``RAG_BACKEND=milvus`` picks through
``open_backend``. ``tests/test_backend.py`` runs the same checks on every backend it is given (embedded Chroma, a
Chroma server, Milvus Lite); ``docs/scale.md`` says when another engine than the local one is needed.

Filters use Chroma's ``where`` syntax (``{"source": {"$in": [...]}}``, ``$and``, ``$gte``...), the shape
``rag.retriever.Filters.to_where`` produces; a backend on another engine translates it (``rag.milvus.milvus_filter``).
``MilvusBackend``'s searches also take it as ``where=``, so that the engine filters on its side instead of being
handed ``allowed``'s set of ids; the Protocol does not require that yet (the local engine has no use for it).

Ingestion, repair, the CLI and the API open the index through ``open_backend`` and use only what the Protocol
declares; what only the local engine has (its derived files, its chunk store) stays behind ``isinstance(index,
DocumentIndex)`` in ``ingest.repair``, ``ingest.check`` and ``rag.snapshot``. An engine that cannot be reached
raises ``BackendUnavailable``: the CLI says so on one line (exit status 2), the API answers 503.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.analysis import Analyzer
from rag.settings import Settings
from rag.types import Chunk


class BackendUnavailable(RuntimeError):
    """The engine holding the index cannot be reached or opened at ``uri`` (shown without credentials); the message
    says why. Raised on opening and by any call while the engine is away (``rag.milvus.MilvusUnavailable``)."""

    def __init__(self, uri: str, message: str) -> None:
        self.uri = uri
        super().__init__(message)


@runtime_checkable
class RetrievalBackend(Protocol):
    """Chunks with their vectors and terms: add, delete, count, fetch, filter, dense and sparse search.

    Searches return (chunk id, score) pairs, best first; ``allowed`` restricts them to those ids, and
    ``windows=True`` searches the sentence-window units (each standing for its sentence) instead of the chunks.
    ``ids`` lists every stored chunk (the repair compares it with the manifest); ``drop`` deletes the collection.
    """

    # Writers hold it while they change the index; a reader holding it sees no document half changed.
    lock: AbstractContextManager[Any]
    # The model that made the stored vectors (None: not recorded); ``legacy``: an index older than that record.
    vector_model: str | None
    legacy: bool
    # Window units add ``heading_weight`` times their section heading's vector (embedded by ``embed_headings``, which
    # the ingestion sets) and hold its terms ``heading_terms`` times (``rag.index``); the ingestion's config names them.
    embed_headings: Callable[[list[str]], np.ndarray] | None
    heading_weight: float
    heading_terms: int
    # Parts found unreadable on open, searched as empty until repaired ("bm25.npz: ..."); the CLI warns about them.
    damaged: list[str]

    def add(self, chunks: list[Chunk], embeddings: np.ndarray, model_id: str | None = None) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def count(self) -> int: ...

    def ids(self) -> list[str]: ...

    def drop(self) -> None: ...

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


def open_backend(settings: Settings) -> RetrievalBackend:
    """The backend ``settings.backend`` names: ``local`` (``DocumentIndex``) or ``milvus`` (``MilvusBackend`` at
    ``settings.milvus_uri``). Each is imported here only when chosen."""
    if settings.backend == "milvus":
        from rag.milvus import MilvusBackend

        return MilvusBackend.from_settings(settings)
    from rag.index import DocumentIndex

    return DocumentIndex.from_settings(settings)
