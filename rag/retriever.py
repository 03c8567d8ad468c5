"""Hybrid retrieval: BM25 and dense search run separately, then fuse."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rag.analysis import SUPPORTED_LANGUAGES
from rag.backend import RetrievalBackend
from rag.documents import FusedDocument, fuse_documents
from rag.embedder import Embedder, embed_queries
from rag.errors import InvalidRequest
from rag.expansion import ExpandedQuery
from rag.fusion import ReciprocalRankFusion
from rag.settings import Settings
from rag.types import ScoredChunk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filters:
    """Metadata filters applied to both retrievers."""

    sources: tuple[str, ...] = ()
    element_types: tuple[str, ...] = ()
    page_min: int | None = None
    page_max: int | None = None

    def to_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.element_types:
            clauses.append({"element_type": {"$in": list(self.element_types)}})
        if self.page_min is not None:
            clauses.append({"page": {"$gte": self.page_min}})
        if self.page_max is not None:
            clauses.append({"page": {"$lte": self.page_max}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def fusion_weights(settings: Settings) -> dict[str, float]:
    """Weight per retriever; the window rankings (``bm25_window``, ``dense_window``) take their sentence ranking's
    weight times ``window_weight``."""
    return {"bm25": settings.bm25_weight, "dense": settings.dense_weight,
            "bm25_window": settings.bm25_weight * settings.window_weight,
            "dense_window": settings.dense_weight * settings.window_weight}


@dataclass
class RetrievalResult:
    hits: list[ScoredChunk]
    timings_ms: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # Documents scored from the retrievers' lists before the chunks are fused (rag/documents.py), best first.
    documents: list[FusedDocument] = field(default_factory=list)


class HybridRetriever:
    """BM25 + dense retrieval fused with reciprocal rank fusion, over sentences and over their windows.

    Each retriever runs at two granularities when the index has sentence windows: the chunk itself (``bm25``,
    ``dense``) and its window (``bm25_window``, ``dense_window``: found through the window, ranked as its
    sentence). Measured on the dev sets (issue 18), the window rankings recover claims whose terms spread over
    neighbouring sentences; the sentence rankings keep answers precise.

    >>> HybridRetriever(index, embedder).retrieve("¿Dosis de paracetamol en niños?", "es").hits[0]
    """

    MODES = ("hybrid", "bm25", "dense")

    def __init__(self, index: RetrievalBackend, embedder: Embedder, candidates: int = 30, rrf_k: int = 60,
                 mode: str = "hybrid", weights: dict[str, float] | None = None,
                 dense_languages: tuple[str, ...] = (), other_language_dense_weight: float = 1.0,
                 window_weight: float = 1.0, legacy_vector_model: str | None = None,
                 dense_search: str = "exact") -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be > 0, got {candidates}")
        if mode not in self.MODES:
            raise InvalidRequest(f"mode must be one of {self.MODES}, got {mode!r}")
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self.mode = mode
        self.fusion = ReciprocalRankFusion(k=rrf_k, weights=weights)
        self.dense_languages = dense_languages
        self.other_language_dense_weight = other_language_dense_weight
        self.window_weight = window_weight
        self.legacy_vector_model = legacy_vector_model
        self.dense_search = dense_search
        self._warned = False  # a vector-model mismatch is logged once, then only traced
        self._languages: tuple[object, dict[str, set[str]]] | None = None  # (index state, other-language ids)

    @classmethod
    def from_settings(cls, index: RetrievalBackend, embedder: Embedder, settings: Settings,
                      candidates: int | None = None, mode: str | None = None,
                      legacy_vector_model: str | None = None) -> HybridRetriever:
        return cls(index, embedder, candidates=candidates or settings.candidates, rrf_k=settings.rrf_k,
                   mode=mode or settings.retrieval_mode, weights=fusion_weights(settings),
                   dense_languages=tuple(settings.dense_languages),
                   other_language_dense_weight=settings.dense_weight_other_languages,
                   window_weight=settings.window_weight, legacy_vector_model=legacy_vector_model,
                   dense_search=settings.dense_search)

    def vector_mismatch(self) -> str | None:
        """Why the dense side is off: the stored vectors come from another model than the query's."""
        stored = self.index.vector_model or (self.legacy_vector_model if self.index.legacy else None)
        expected = getattr(self.embedder, "model_id", None)
        if stored is None or expected is None or stored == expected:
            return None
        if self.index.count() == 0:
            return None
        return (f"the index vectors were made by {stored}, the dense model is {expected}: dense retrieval is off "
                "until the documents are ingested again (rag ingest)")

    def fusion_for(self, language: str, mode: str = "hybrid") -> ReciprocalRankFusion:
        """The fusion for a query language: in hybrid mode, the dense ranking counts less in languages the
        embedder lacks (alone, it keeps its order whatever the weight)."""
        if mode != "hybrid" or not self.dense_languages or language in self.dense_languages:
            return self.fusion
        weights = {**self.fusion.weights, "dense": self.other_language_dense_weight,
                   "dense_window": self.other_language_dense_weight * self.window_weight}
        return ReciprocalRankFusion(k=self.fusion.k, weights=weights)

    def retrieve(self, query: str, language: str, top_k: int | None = None, filters: Filters | None = None,
                 mode: str | None = None, expansions: list[ExpandedQuery] | None = None) -> RetrievalResult:
        """Run BM25 and/or dense search for the query (and each expansion), then fuse all ranked lists.

        Lists are named ``bm25``/``dense`` for the query itself and ``bm25#n``/``dense#n`` for the
        n-th expansion; fusion weights apply by retriever (``bm25``, ``dense``).
        """
        if mode is None:
            mode = self.mode
        if mode not in self.MODES:
            raise InvalidRequest(f"mode must be one of {self.MODES}, got {mode!r}")
        if top_k is None:
            top_k = self.candidates
        where = filters.to_where() if filters else None
        result = RetrievalResult(hits=[])
        queries = [ExpandedQuery(query, "original")] + [e for e in expansions or [] if e.kind != "original"]
        vectors = None
        mismatch = self.vector_mismatch() if mode in ("hybrid", "dense") else None
        if mismatch:
            if not self._warned:
                log.warning(mismatch)
                self._warned = True
            result.details["dense_off"] = mismatch
        if mode in ("hybrid", "dense") and not mismatch:
            started = time.perf_counter()
            vectors = embed_queries(self.embedder, [q.text for q in queries])
            result.timings_ms["embed"] = (time.perf_counter() - started) * 1000
        windows = self.window_weight > 0 and self.index.windowed()
        # Both indexes are read under the index lock, which writers hold while they change both: a query
        # sees each document as it was before a change or after it, never half in one index.
        found: dict[str, list[tuple[str, float]]] = {}  # rankings of ids, their chunks fetched once below
        with self.index.lock:
            allowed = self.index.allowed(where) if where else None  # the ids the filters let through
            for n, expanded in enumerate(queries):
                suffix = f"#{n}" if n else ""
                if mode in ("hybrid", "bm25") and not (expanded.dense_only and mode == "hybrid"):
                    started = time.perf_counter()
                    terms = self.index.analyzer(language).terms(expanded.text)
                    for window in (False, True) if windows else (False,):
                        name = ("bm25_window" if window else "bm25") + suffix
                        found[name] = self.index.search_bm25(terms, self.candidates, allowed=allowed, windows=window)
                    result.timings_ms["bm25"] = (result.timings_ms.get("bm25", 0.0)
                                                 + (time.perf_counter() - started) * 1000)
                if vectors is not None:
                    started = time.perf_counter()
                    for window in (False, True) if windows else (False,):
                        name = ("dense_window" if window else "dense") + suffix
                        found[name] = self.index.search_dense(vectors[n], self.candidates, allowed=allowed,
                                                              windows=window, approximate=self.dense_search == "hnsw")
                    result.timings_ms["dense"] = (result.timings_ms.get("dense", 0.0)
                                                  + (time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            rankings = {name: [cid for cid, _ in pairs] for name, pairs in found.items()}
            unseen, stand_ins = None, None
            if mode == "hybrid" and vectors is not None and not self.dense_languages:
                # A document in another language than the question only the dense side can read: where BM25
                # does not rank it, it counts at its dense rank (an English question over a Spanish law). Only
                # with a dense model for every language: an English-only one's ranks mean nothing there.
                unseen = self.other_language_ids(language)
                stand_ins = {name: name.replace("bm25", "dense", 1) for name in rankings if name.startswith("bm25")}
            fusion = self.fusion_for(language, mode)
            fused = fusion.fuse_ids(rankings, unseen=unseen, stand_ins=stand_ins)
            result.documents = fuse_documents(found, fusion.weights, unseen=unseen, stand_ins=stand_ins)
            result.timings_ms["fusion"] = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            result.hits = self._fetched(fused, top_k)
            result.timings_ms["fetch"] = (time.perf_counter() - started) * 1000
        result.details.update({name: [cid for cid, _ in pairs[:10]] for name, pairs in found.items()})
        return result

    def other_language_ids(self, language: str) -> set[str]:
        """The ids of the chunks whose document is in another language than ``language`` (documents of an
        unknown language are not among them); read once per state of the index."""
        # the index's generation changes with every write; an index without one (a Chroma server) is re-read
        # when its count changes
        state = getattr(self.index, "generation", None) or ("count", self.index.count())
        if self._languages is None or self._languages[0] != state:
            self._languages = (state, {})
        others = self._languages[1]
        if language not in others:
            others[language] = self.index.allowed({"language": {"$in": [lang for lang in SUPPORTED_LANGUAGES
                                                                           if lang != language]}})
        return others[language]

    def _fetched(self, fused: list[tuple[str, float, dict[str, int]]], top_k: int) -> list[ScoredChunk]:
        """The first ``top_k`` fused ids as scored chunks, their texts read from the store for those alone (one
        request, the cost of which grows with the ids asked: ~4 ms for 10, ~28 ms for 120); an id the store
        lacks (an index left half-written) is skipped for the next one."""
        hits: list[ScoredChunk] = []
        position = 0
        while len(hits) < top_k and position < len(fused):
            part = fused[position:position + top_k - len(hits)]
            position += len(part)
            chunks = self.index.get([cid for cid, _, _ in part])
            hits.extend(ScoredChunk(chunks[cid], score, ranks) for cid, score, ranks in part if cid in chunks)
        return hits

