"""The ingest's embedding: each distinct text embedded once per run.

Documents repeat themselves: running headers and footers that boilerplate removal leaves (a Word file's, a
one-page PDF's), legal formulas, the same disclaimer in every file of a folder, a section heading over many
window units. Equal texts get equal vectors, so ``DistinctTextEmbedder`` embeds each distinct text once and
copies its vector to every place that asked for it, within a call and across the calls of a run.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from rag.embedder import Embedder

# About 50 MB of 384-dimension vectors: a run's repeated texts come back within far fewer new texts than this
# (a footer on every page, a formula in every file), while a large run's one-off texts cannot fill memory.
MAX_VECTORS = 32_768


class DistinctTextEmbedder:
    """An ``Embedder`` that embeds each distinct text once and remembers the vectors of the last
    ``max_vectors`` distinct texts (least recently asked for out); ``asked`` and ``embedded`` count the
    texts asked for and those the wrapped model embedded since ``reset``.

    >>> distinct = DistinctTextEmbedder(E5Embedder())
    >>> distinct.embed(["Página 1 de 3", "Artículo 1.", "Página 1 de 3"]).shape
    (3, 384)
    >>> distinct.asked, distinct.embedded
    (3, 2)
    """

    def __init__(self, embedder: Embedder, max_vectors: int = MAX_VECTORS) -> None:
        if max_vectors < 0:
            raise ValueError(f"max_vectors must be >= 0, got {max_vectors}")
        self.inner = embedder
        self.max_vectors = max_vectors
        self.asked = 0
        self.embedded = 0
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return self.inner.embed([])
        with self._lock:
            found: dict[str, np.ndarray] = {}
            for text in dict.fromkeys(texts):
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
            missing = [text for text in dict.fromkeys(texts) if text not in found]
            if missing:
                fresh = np.asarray(self.inner.embed(missing), dtype=np.float32)
                for text, vector in zip(missing, fresh, strict=True):
                    found[text] = self._vectors[text] = vector.copy()  # a row alone: evicting it frees it
                while len(self._vectors) > self.max_vectors:
                    self._vectors.popitem(last=False)
            self.asked += len(texts)
            self.embedded += len(missing)
        return np.stack([found[text] for text in texts])

    def reset(self) -> None:
        """Forget the vectors and zero the counts (a new run)."""
        with self._lock:
            self._vectors.clear()
            self.asked = self.embedded = 0
