"""What the dense shortlist of large collections keeps of the exact ranking, on real sentence vectors.

Usage: python -m bench.shortlist [--dataset ../shared/eval/scifact] [--abstracts 1500] [--model minilm|e5]
       [--fractions 0.002 0.005 0.01 0.02]

``rag.quantized`` ranks a large collection by binary codes, then int8 copies, and scores only the best rows
exactly; its share of the collection (``SHORTLIST_FRACTION``) decides the recall. This embeds the sentences of a
BEIR corpus' first abstracts and its queries with the embedded model (cached under ``.bench-shortlist/``), and
prints, for each fraction, the share of the exact top 10 and top 30 that the shortlisted search returns, beside
the plain (unweighted) Hamming shortlist followed by exact scoring. The synthetic vectors of ``bench.scale`` are
random, so their neighbours say nothing about real ones: this is where the recall is measured.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from rag import quantized
from rag.quantized import QuantizedVectors


def vectors(dataset: Path, abstracts: int, model: str, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    cache = cache_dir / f"{dataset.name}-{abstracts}-{model}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return data["matrix"], data["queries"]
    from rag.embedder import E5Embedder, SentenceTransformerEmbedder, embed_queries

    docs = [json.loads(line) for line in (dataset / "corpus.jsonl").open(encoding="utf-8")][:abstracts]
    sentences = [s for d in docs for s in re.split(r"(?<=[.!?])\s+", d["text"]) if len(s) > 20]
    queries = [json.loads(line)["text"] for line in (dataset / "queries.jsonl").open(encoding="utf-8")][:300]
    embedder = SentenceTransformerEmbedder() if model == "minilm" else E5Embedder()
    matrix = embedder.embed(sentences).astype(np.float32)
    query_vectors = embed_queries(embedder, queries).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, matrix=matrix, queries=query_vectors)
    return matrix, query_vectors


def recall(matrix: np.ndarray, queries: np.ndarray, compact: QuantizedVectors, n: int, plain: bool) -> float:
    shares = []
    for query in queries:
        exact = set(np.argsort(-(matrix @ query))[:n])
        if plain:  # unweighted Hamming, the whole shortlist scored exactly
            bits = compact._bits((query > compact.centre)[None, :])[:, 0]
            distance = sum(np.bitwise_count(compact.codes[w] ^ bits[w]) for w in range(len(bits)))
            size = max(quantized.SHORTLIST_MIN, int(quantized.SHORTLIST_FRACTION * len(matrix)))
            rows = np.argpartition(distance, size - 1)[:size]
        else:
            rows = compact.shortlist(query, n)
        found = rows[np.argsort(-(matrix[rows] @ query))[:n]]
        shares.append(len(exact & set(found.tolist())) / n)
    return float(np.mean(shares))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="../shared/eval/scifact")
    parser.add_argument("--abstracts", type=int, default=1500)
    parser.add_argument("--model", choices=["minilm", "e5"], default="minilm")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.002, 0.005, 0.01, 0.02])
    parser.add_argument("--cache", default=".bench-shortlist")
    args = parser.parse_args(argv)
    from rag.offline import ensure_offline

    ensure_offline()
    matrix, queries = vectors(Path(args.dataset), args.abstracts, args.model, Path(args.cache))
    compact = QuantizedVectors.encode(matrix)
    print(f"{args.model}: {len(matrix):,} sentence vectors, {len(queries)} queries")
    rows = []
    quantized.SHORTLIST_MIN = 10  # the fraction alone decides, as at a million vectors
    for fraction in args.fractions:
        quantized.SHORTLIST_FRACTION = fraction
        row = {"fraction": fraction, "rows": int(fraction * len(matrix))}
        for n in (10, 30):
            row[f"recall@{n}"] = round(recall(matrix, queries, compact, n, plain=False), 3)
            row[f"plain_recall@{n}"] = round(recall(matrix, queries, compact, n, plain=True), 3)
        rows.append(row)
        print(f"shortlist {fraction:6.1%} ({row['rows']:>6,} rows): recall@10 {row['recall@10']:.3f} "
              f"(plain Hamming {row['plain_recall@10']:.3f})  recall@30 {row['recall@30']:.3f} "
              f"(plain {row['plain_recall@30']:.3f})", flush=True)
    print(json.dumps({"model": args.model, "vectors": len(matrix), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
