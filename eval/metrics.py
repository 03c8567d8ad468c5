"""Ranking metrics, one function each, with pytrec_eval's conventions.

Every function takes ``ranking`` (document ids, best first, no duplicates) and ``qrels``
(document id -> graded relevance; > 0 is relevant) and returns the value for one query.
A query with an empty ranking scores 0 (pytrec_eval would drop it from the mean: we don't).
"""

from __future__ import annotations

import math


def hit_rate(ranking: list[str], qrels: dict[str, int], k: int) -> float:
    """1 if a relevant document is in the top k, else 0."""
    return 1.0 if any(qrels.get(d, 0) > 0 for d in ranking[:k]) else 0.0


def mrr(ranking: list[str], qrels: dict[str, int], k: int) -> float:
    """1 / rank of the first relevant document within the top k, else 0 (Voorhees, TREC-8 QA)."""
    for rank, doc in enumerate(ranking[:k], start=1):
        if qrels.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def recall(ranking: list[str], qrels: dict[str, int], k: int) -> float:
    """Relevant documents in the top k / all relevant documents."""
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def ndcg(ranking: list[str], qrels: dict[str, int], k: int) -> float:
    """DCG@k / IDCG@k with linear gain and log2 discount (Järvelin & Kekäläinen, 2002).

    DCG@k = sum_{i=1..k} rel_i / log2(i + 1); the ideal ranking sorts all judged documents by
    relevance and is cut at k, as trec_eval's ndcg_cut does.
    """
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 1) for i, d in enumerate(ranking[:k], start=1))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


METRICS = {"hit_rate": hit_rate, "mrr": mrr, "ndcg": ndcg, "recall": recall}
DEFAULT_KS = (1, 3, 5, 10, 100)


def evaluate_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]], ks: tuple[int, ...] = DEFAULT_KS,
                 metrics: tuple[str, ...] = ("hit_rate", "mrr", "ndcg", "recall")) -> dict[str, float]:
    """Mean of each metric@k over every judged query.

    A query missing from ``run`` or with an empty ranking scores 0 and stays in the mean (pytrec_eval
    would drop it); how many there were is reported as ``queries_without_results``.
    """
    queries = sorted(qrels)
    out: dict[str, float] = {"queries_without_results": float(sum(not run.get(q) for q in queries))}
    for name in metrics:
        fn = METRICS[name]
        for k in ks:
            values = [fn(run.get(q, []), qrels[q], k) for q in queries]
            out[f"{name}@{k}"] = sum(values) / len(values) if values else 0.0
    return out
