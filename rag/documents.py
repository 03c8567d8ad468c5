"""Document-level ranking: which documents say it, scored from their retrieved chunks.

Chunks arrive ranked (fused, perhaps re-ranked: their scores need not share a scale), so each chunk counts by
its rank, 1 / (k + rank), as in reciprocal rank fusion. A document's score is its best chunk's plus ``decay``
times its second's plus ``decay``² times its third's (``decay`` = 0: a document ranks where its best chunk
ranks). The chunks that carried each document are kept, so a trace shows why it ranks where it does.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.types import ScoredChunk


@dataclass(frozen=True)
class DocumentHit:
    """A document (its ``source``) with its score and the ids of the chunks that made it, best first."""

    source: str
    score: float
    chunk_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "score": round(self.score, 6), "chunks": list(self.chunk_ids)}


def rank_documents(hits: list[ScoredChunk], decay: float = 0.0, top: int = 3, k: int = 60) -> list[DocumentHit]:
    """Documents ranked by their best ``top`` chunks (``hits`` best first), geometrically weighted by ``decay``.

    >>> [d.source for d in rank_documents(hits)][:3]
    ['ley_39_2015.pdf', 'constitucion.pdf', 'manual.pdf']
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be within [0, 1], got {decay}")
    top = top if decay > 0 else 1  # with no decay only the best chunk counts (and is named)
    order: list[str] = []
    chunks: dict[str, list[tuple[int, ScoredChunk]]] = {}
    for rank, hit in enumerate(hits, start=1):
        source = hit.chunk.metadata.source
        if source not in chunks:
            order.append(source)
            chunks[source] = []
        if len(chunks[source]) < top:
            chunks[source].append((rank, hit))
    ranked = []
    for position, source in enumerate(order):
        best = chunks[source]
        score = sum(decay ** i / (k + rank) for i, (rank, _) in enumerate(best))
        ranked.append((score, position, DocumentHit(source, score, tuple(h.chunk.id for _, h in best))))
    # Equal scores keep the order in which the documents were first found.
    return [doc for _, _, doc in sorted(ranked, key=lambda r: (-r[0], r[1]))]
