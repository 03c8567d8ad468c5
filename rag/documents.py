"""Document-level ranking: which documents say it, scored from their retrieved chunks.

Two ways, both keeping the chunks that carried each document, so a trace shows why it ranks where it does:

- ``fuse_documents`` (the default, ``RAG_DOCUMENT_RANKING=scores``): from the retrievers' own scored lists,
  before the chunks are fused. Each list (BM25 or dense, over sentences or their windows, per query
  expansion) scores a document by its best chunk there, min-max normalised over the list, and the document's
  score is the weighted sum over the lists. Two sentences of one abstract found by different retrievers thus
  add up, which a fusion of chunks cannot do (each chunk only collects its own ranks), and a list's score gaps
  count, not only its order. Measured on the dev sets (issue 18, ``python -m eval.retrieval_table``, report
  halves, NDCG@10): SciFact 0.702 -> 0.716, XQuAD-es 0.973 -> 0.977, XQuAD-en 0.972 -> 0.980, statutes pages
  0.869 -> 0.863 (22 questions); a reciprocal rank fusion of the same document lists gained less (SciFact
  0.711 at k=5, 0.703 at k=20) and lost on the statutes (0.80 and 0.77).
- ``rank_documents`` (``RAG_DOCUMENT_RANKING=chunks``, and whenever a cross-encoder re-ranked the chunks):
  from the final chunk order (fused, perhaps re-ranked: their scores need not share a scale), so each chunk
  counts by its rank, 1 / (k + rank). A document's score is its best chunk's plus ``decay`` times its
  second's plus ``decay``² times its third's (``decay`` = 0: a document ranks where its best chunk ranks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rag.types import Chunk, ScoredChunk


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


@dataclass(frozen=True)
class FusedDocument:
    """A document (its id: ``ChunkMetadata.doc_id``) scored from the retrievers' lists, with the best chunk of
    each list that holds it, the largest contribution first."""

    doc_id: str
    score: float
    chunk_ids: tuple[str, ...]


def fuse_documents(rankings: Mapping[str, Sequence[tuple[str, float]]], weights: Mapping[str, float] | None = None,
                   document_of: Callable[[str], str] = Chunk.document_id, unseen: set[str] | None = None,
                   stand_ins: Mapping[str, str] | None = None) -> list[FusedDocument]:
    """Documents ranked by the weighted sum over ``rankings`` (name -> (chunk id, score) best first) of their
    best chunk's min-max normalised score in each list; a list named ``retriever#n`` (a query expansion's)
    takes the weight of ``retriever``. ``unseen`` and ``stand_ins`` as in ``ReciprocalRankFusion.fuse_ids``:
    a chunk a list cannot read (a document in another language than a BM25 query) counts in it at its
    normalised score in the stand-in list.

    >>> lists = {"bm25": [("a-0-x", 9.0), ("b-0-y", 7.0), ("c-0-z", 5.0)], "dense": [("b-1-w", .8), ("c-0-z", .6)]}
    >>> [(d.doc_id, d.score, d.chunk_ids) for d in fuse_documents(lists)]
    [('b', 1.5, ('b-1-w', 'b-0-y')), ('a', 1.0, ('a-0-x',)), ('c', 0.0, ('c-0-z',))]
    """
    weights = weights or {}
    normalised = {name: _document_scores(pairs, document_of) for name, pairs in rankings.items()}
    scores: dict[str, float] = {}
    carried: dict[str, dict[str, float]] = {}  # doc -> chunk -> its largest contribution
    for name, found in normalised.items():
        weight = weights.get(name.split("#")[0], 1.0)
        stand_in = (stand_ins or {}).get(name)
        if unseen and stand_in is not None:
            other = normalised.get(stand_in, {})
            found = {**{doc: hit for doc, hit in other.items() if hit[0] in unseen}, **found}
        if weight == 0:
            continue
        for doc, (chunk_id, value) in found.items():
            scores[doc] = scores.get(doc, 0.0) + weight * value
            chunks = carried.setdefault(doc, {})
            chunks[chunk_id] = max(chunks.get(chunk_id, 0.0), weight * value)
    order = sorted(scores, key=lambda doc: (-scores[doc], doc))
    return [FusedDocument(doc, scores[doc], tuple(sorted(carried[doc], key=lambda c: -carried[doc][c])))
            for doc in order]


def _document_scores(pairs: Sequence[tuple[str, float]],
                     document_of: Callable[[str], str]) -> dict[str, tuple[str, float]]:
    """Each document's best chunk in a list and its score scaled to [0, 1] over the list (the list's last
    score 0, its first 1; a list of equal scores gives each 1)."""
    if not pairs:
        return {}
    values = [score for _, score in pairs]
    top, low = max(values), min(values)
    span = top - low
    best: dict[str, tuple[str, float]] = {}
    for chunk_id, score in pairs:
        doc = document_of(chunk_id)
        value = (score - low) / span if span > 0 else 1.0
        if doc not in best or value > best[doc][1]:
            best[doc] = (chunk_id, value)
    return best
