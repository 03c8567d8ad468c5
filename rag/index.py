"""The document index: a Chroma store and a BM25 index kept consistent with each other."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from rag.analysis import SUPPORTED_LANGUAGES, Analyzer
from rag.bm25 import BM25Index
from rag.settings import Settings
from rag.types import Chunk
from rag.vectorstore import ChromaStore

log = logging.getLogger(__name__)


class DocumentIndex:
    """Adds, deletes and looks up chunks in both indexes; ``save()`` persists the BM25 side.

    Safe to query from several threads while one thread writes: ``lock`` serialises BM25 changes
    and searches (Chroma handles its own concurrency).
    """

    def __init__(self, index_dir: Path, collection: str = "documents", chroma_url: str | None = None,
                 chroma_dir: Path | None = None) -> None:
        self.index_dir = Path(index_dir)
        # Named collections keep their Chroma collection in the index folder's one Chroma store.
        self.store = ChromaStore(path=Path(chroma_dir) if chroma_dir else self.index_dir / "chroma",
                                 collection=collection, url=chroma_url)
        self.bm25 = BM25Index(self.index_dir / "bm25.json.gz")
        self._analyzers = {lang: Analyzer(lang) for lang in SUPPORTED_LANGUAGES}
        self.lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentIndex:
        return cls(settings.index_dir, settings.collection, settings.chroma_url, settings.chroma_dir)

    def analyzer(self, language: str | None) -> Analyzer:
        return self._analyzers.get(language or "en", self._analyzers["en"])

    def add(self, chunks: list[Chunk], embeddings: np.ndarray) -> None:
        terms = {c.id: self.analyzer(c.metadata.language).terms(c.text) for c in chunks}
        with self.lock:
            self.store.add(chunks, embeddings)
            self.bm25.add(terms)

    def delete(self, ids: list[str]) -> None:
        with self.lock:
            self.store.delete(ids)
            self.bm25.delete(ids)

    def search_bm25(self, terms: list[str], n: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        with self.lock:
            return self.bm25.search(terms, n, allowed=allowed)

    def idf(self, terms: list[str]) -> dict[str, float]:
        """BM25 inverse document frequency of each term (rare terms weigh more in evidence scoring)."""
        with self.lock:
            return self.bm25.idf(terms)

    def save(self) -> None:
        with self.lock:
            self.bm25.save()

    def drop(self) -> None:
        """Delete the Chroma collection (a deleted ``rag`` collection; its folder goes with the caller)."""
        with self.lock:
            self.store.drop()

    def reconcile(self, expected_ids: set[str]) -> int:
        """Drop chunks that no manifest entry owns (left by a run that was killed); returns how many."""
        orphans = (set(self.store.ids()) | set(self.bm25.ids())) - expected_ids
        if orphans:
            log.warning("removing %d orphaned chunks left by an interrupted run", len(orphans))
            self.delete(sorted(orphans))
        return len(orphans)

    def missing(self, expected_ids: set[str]) -> set[str]:
        """Chunk ids the manifest lists that either index lacks."""
        stored = set(self.store.ids())
        return {cid for cid in expected_ids if cid not in stored or cid not in self.bm25}
