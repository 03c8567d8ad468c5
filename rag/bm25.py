"""Sparse retrieval: a persisted BM25 (Okapi) index over analysed chunk terms.

Scores are rank-bm25's ``BM25Okapi`` (idf with its epsilon floor, document lengths), computed with numpy
and a sparse matrix: ``BM25Okapi.get_scores`` loops over every document in Python on each query (seconds
per query at 50,000 chunks) and its constructor over every token (seconds to open a large index). A test
checks the scores and idfs against rank-bm25 itself.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
from scipy import sparse

EPSILON = 0.25  # rank-bm25's BM25Okapi default: the idf floor, as a share of the mean idf


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
        """The chunk x term matrix of BM25 weights, built with numpy from the terms: rank-bm25's ``BM25Okapi``
        formulas (idf with its epsilon floor for terms in more than half the chunks, document lengths in
        tokens) without its per-document Python loops (most of the time to open a 100,000-chunk index)."""
        if self._matrix is None:
            self._ids = list(self._terms)
            # rank-bm25 divides by the corpus size; an empty token list is kept as a placeholder term.
            docs = [self._terms[cid] or ["\x00"] for cid in self._ids]
            lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
            vocab: dict[str, int] = {}
            columns = np.fromiter((vocab.setdefault(t, len(vocab)) for d in docs for t in d), dtype=np.int64,
                                  count=int(lengths.sum()))
            rows = np.repeat(np.arange(len(docs)), lengths)
            matrix = sparse.csr_matrix((np.ones(len(columns)), (rows, columns)), shape=(len(docs), len(vocab)))
            matrix.sum_duplicates()  # term frequencies
            n = len(docs)
            df = np.bincount(matrix.indices, minlength=len(vocab))
            idf = np.log(n - df + 0.5) - np.log(df + 0.5)
            idf = np.where(idf < 0, EPSILON * idf.mean(), idf)  # BM25Okapi's floor for very common terms
            norm = self.k1 * (1 - self.b + self.b * lengths / lengths.mean())
            tf = matrix.data
            row_of = np.repeat(np.arange(n), np.diff(matrix.indptr))
            matrix.data = idf[matrix.indices] * tf * (self.k1 + 1) / (tf + norm[row_of])
            self._matrix, self._vocab = matrix, vocab
            self._idf = dict(zip(vocab, idf.tolist(), strict=True))
        return self._matrix
