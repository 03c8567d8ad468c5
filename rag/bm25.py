"""Sparse retrieval: a persisted BM25 (Okapi) index over analysed chunk terms.

rank-bm25's ``BM25Okapi`` computes the statistics (idf with its epsilon floor, document lengths);
scoring is vectorised with a sparse matrix because ``BM25Okapi.get_scores`` loops over every
document in Python on each query (seconds per query at 50,000 chunks). The scores are the same,
which a test checks against ``get_scores``.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi
from scipy import sparse


class BM25Index:
    """BM25 over chunk ids and their terms; terms come from ``rag.analysis.Analyzer``.

    >>> index = BM25Index(); index.add({"a": ["dosis", "paracetamol"]}); index.search(["dosis"], 1)
    [('a', ...)]
    """

    FORMAT = 1

    def __init__(self, path: Path | None = None, k1: float = 1.5, b: float = 0.75, analysis: str | None = None) -> None:
        self.path = path
        self.k1, self.b = k1, b
        # Which analysis made the terms (``rag.analysis.ANALYSIS_VERSION``); a loaded file says its own (None: older).
        self.analysis = analysis
        self._terms: dict[str, list[str]] = {}
        self._matrix: sparse.csr_matrix | None = None
        self._vocab: dict[str, int] = {}
        self._ids: list[str] = []
        self._idf: dict[str, float] = {}
        if path is not None and path.exists():
            self._load(path)

    def __len__(self) -> int:
        return len(self._terms)

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._terms

    def add(self, terms_by_id: dict[str, list[str]]) -> None:
        self._terms.update(terms_by_id)
        self._matrix = None

    def delete(self, chunk_ids: list[str]) -> None:
        for chunk_id in chunk_ids:
            self._terms.pop(chunk_id, None)
        self._matrix = None

    def ids(self) -> list[str]:
        return list(self._terms)

    def search(self, terms: list[str], n: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Top ``n`` (chunk id, score) with a positive score; ``allowed`` restricts to those ids."""
        if not self._terms or not terms:
            return []
        scores = self.scores(terms)
        if allowed is not None:
            mask = np.fromiter((cid in allowed for cid in self._ids), dtype=bool, count=len(self._ids))
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        # Ties are broken by chunk id so that results are reproducible.
        ranked = sorted(top, key=lambda i: (-scores[i], self._ids[i]))
        return [(self._ids[i], float(scores[i])) for i in ranked if scores[i] > 0]

    def idf(self, terms: list[str]) -> dict[str, float]:
        """Each term's idf; a term no chunk holds gets the mean idf of the known ones (it tells no chunk from
        another, and a paraphrase's word should not outweigh the words the documents share)."""
        if not self._terms:
            return {t: 1.0 for t in terms}
        self._ensure_matrix()
        known = [self._idf[t] for t in terms if t in self._idf]
        typical = sum(known) / len(known) if known else 1.0
        return {t: self._idf.get(t, typical) for t in terms}

    def save(self) -> None:
        if self.path is None:
            raise ValueError("BM25Index has no path to save to")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as fh:
            json.dump({"format": self.FORMAT, "k1": self.k1, "b": self.b, "analysis": self.analysis,
                       "terms": self._terms}, fh)
        os.replace(tmp, self.path)  # atomic: a killed run never leaves a half-written index

    def _load(self, path: Path) -> None:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("format") != self.FORMAT:
            raise ValueError(f"{path}: unsupported BM25 index format {data.get('format')!r}")
        self._terms = data["terms"]
        self.analysis = data.get("analysis")

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every chunk (in ``self._ids`` order) for the query terms, repeats counted."""
        matrix = self._ensure_matrix()
        query = np.zeros(matrix.shape[1], dtype=np.float64)
        for term in terms:
            column = self._vocab.get(term)
            if column is not None:
                query[column] += 1.0
        return matrix @ query

    def _ensure_matrix(self) -> sparse.csr_matrix:
        if self._matrix is None:
            self._ids = list(self._terms)
            # rank-bm25 divides by the corpus size; an empty token list is kept as a placeholder term.
            corpus = [self._terms[cid] or ["\x00"] for cid in self._ids]
            model = BM25Okapi(corpus, k1=self.k1, b=self.b)
            self._vocab = {term: i for i, term in enumerate(model.idf)}
            self._idf = dict(model.idf)
            lengths = np.asarray(model.doc_len, dtype=np.float64)
            norm = self.k1 * (1 - self.b + self.b * lengths / model.avgdl)
            rows, cols, vals = [], [], []
            for d, freqs in enumerate(model.doc_freqs):
                for term, freq in freqs.items():
                    rows.append(d)
                    cols.append(self._vocab[term])
                    vals.append(model.idf[term] * freq * (self.k1 + 1) / (freq + norm[d]))
            self._matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(corpus), len(self._vocab)))
        return self._matrix
