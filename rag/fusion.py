"""Rank fusion of several retrievers' result lists."""

from __future__ import annotations


class ReciprocalRankFusion:
    """score(d) = sum over retrievers r of weight_r / (k + rank_r(d)), ranks starting at 1.

    Cormack, Clarke & Buettcher (2009), "Reciprocal rank fusion outperforms Condorcet and
    individual rank learning methods". With all weights 1 this is plain RRF; other weights give
    the weighted variant. A list named ``retriever#n`` takes the weight of ``retriever``.
    """

    def __init__(self, k: int = 60, weights: dict[str, float] | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k
        self.weights = weights or {}

    def fuse_ids(self, rankings: dict[str, list[str]], top_k: int | None = None, unseen: set[str] | None = None,
                 stand_ins: dict[str, str] | None = None) -> list[tuple[str, float, dict[str, int]]]:
        """The fusion of rankings of ids, best first: (id, fused score, rank in each list that holds it). Only
        ids are needed, so a retriever reads the texts of the fused top alone.

        ``unseen``: ids that some lists cannot rank (a BM25 query cannot match a document in another
        language); a list named in ``stand_ins`` that lacks such an id counts it at its rank in the stand-in
        list (``{"bm25": "dense"}``), so that a document only the dense side can read is not outvoted by the
        lists that are blind to it. Its rank there is recorded as ``"bm25<dense"``."""
        scores: dict[str, float] = {}
        ranks: dict[str, dict[str, int]] = {}
        for name, ids in rankings.items():
            weight = self.weights.get(name.split("#")[0], 1.0)  # "dense#2": an expansion's dense list
            for rank, cid in enumerate(ids, start=1):
                scores[cid] = scores.get(cid, 0.0) + weight / (self.k + rank)
                ranks.setdefault(cid, {})[name] = rank
        for name, stand_in in (stand_ins or {}).items() if unseen else ():
            if name not in rankings or stand_in not in rankings:
                continue
            weight = self.weights.get(name.split("#")[0], 1.0)
            present = set(rankings[name])
            for rank, cid in enumerate(rankings[stand_in], start=1):
                if cid in unseen and cid not in present:
                    scores[cid] += weight / (self.k + rank)
                    ranks[cid][f"{name}<{stand_in}"] = rank
        # Ties (e.g. hits only a zero-weight list found) keep their best rank order, then the id.
        order = sorted(scores, key=lambda cid: (-scores[cid], min(ranks[cid].values()), cid))
        if top_k is not None:
            order = order[:top_k]
        return [(cid, scores[cid], ranks[cid]) for cid in order]
