"""Plain baselines over whole documents, to measure the product's retrieval against (issue 18).

Each document is one unit: BM25 over its analysed terms (the product's analyser and BM25, stemmed, in the
document's language), dense over one vector of its title and text (the embedder cuts what does not fit),
plain reciprocal rank fusion of the two (k = 60, equal weights, the top 100 of each), and a score fusion of
the two (each list's scores min-max normalised, summed with equal weights: the fusion the product ranks
documents with, ``rag.documents.fuse_documents``, here over whole documents). Nothing is chunked, expanded or
re-ranked. Document vectors are cached next to the evaluation indexes by corpus and model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.beir import BeirDataset
from rag.analysis import Analyzer, detect_language
from rag.bm25 import BM25Index
from rag.documents import fuse_documents
from rag.embedder import Embedder, embed_queries

DEPTH = 100


@dataclass
class BaselineRun:
    """Rankings (query id -> document ids, best first), their scores, and per-query latency in ms."""

    name: str
    run: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)  # query id -> the scores of ``run``'s documents
    latencies_ms: list[float] = field(default_factory=list)
    index_s: float = 0.0


class WholeDocumentBaselines:
    """BM25, dense and plain RRF over whole documents.

    >>> WholeDocumentBaselines(dataset, cache).bm25(qids).run["q1"][:3]
    """

    def __init__(self, dataset: BeirDataset, cache: Path) -> None:
        self.dataset = dataset
        self.cache = cache
        self.ids = [d.id for d in dataset.corpus]
        self.texts = [f"{d.title}\n{d.text}".strip() for d in dataset.corpus]
        self._analyzers: dict[str, Analyzer] = {}
        self._bm25: BM25Index | None = None
        self._bm25_s = 0.0

    def _analyzer(self, language: str) -> Analyzer:
        if language not in self._analyzers:
            self._analyzers[language] = Analyzer(language)
        return self._analyzers[language]

    def _index(self) -> BM25Index:
        if self._bm25 is None:
            started = time.perf_counter()
            index = BM25Index()
            index.add({str(i): self._analyzer(detect_language(text[:5000])).terms(text)
                       for i, text in enumerate(self.texts)})
            index.idf([])  # builds the matrix now, inside the timed part
            self._bm25, self._bm25_s = index, time.perf_counter() - started
        return self._bm25

    def bm25(self, qids: list[str]) -> BaselineRun:
        index = self._index()
        result = BaselineRun("BM25 (whole documents)", index_s=self._bm25_s)
        for qid in qids:
            query = self.dataset.queries[qid]
            started = time.perf_counter()
            terms = self._analyzer(detect_language(query)).terms(query)
            found = index.search(terms, DEPTH)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.run[qid] = [self.ids[int(i)] for i, _ in found]
            result.scores[qid] = [float(score) for _, score in found]
        return result

    def _vectors(self, embedder: Embedder) -> tuple[np.ndarray, float]:
        safe = embedder.model_id.replace("/", "_")
        path = self.cache / f"{self.dataset.name}-{self.dataset.corpus_hash}-{safe}-docs.npy"
        timing = path.with_suffix(".seconds")
        if path.exists() and timing.exists():
            return np.load(path), float(timing.read_text())
        started = time.perf_counter()
        vectors = embedder.embed(self.texts)
        seconds = time.perf_counter() - started
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        timing.write_text(f"{seconds:.1f}")
        return vectors, seconds

    def dense(self, qids: list[str], embedder: Embedder, label: str) -> BaselineRun:
        vectors, seconds = self._vectors(embedder)
        result = BaselineRun(f"dense {label} (whole documents)", index_s=seconds)
        for qid in qids:
            started = time.perf_counter()
            scores = vectors @ embed_queries(embedder, [self.dataset.queries[qid]])[0]
            top = np.argsort(-scores)[:DEPTH]
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.run[qid] = [self.ids[i] for i in top]
            result.scores[qid] = [float(scores[i]) for i in top]
        return result

    @staticmethod
    def rrf(bm25: BaselineRun, dense: BaselineRun, label: str, k: int = 60) -> BaselineRun:
        result = BaselineRun(f"plain RRF BM25 + {label} (whole documents)", index_s=bm25.index_s + dense.index_s)
        for qid in bm25.run:
            scores: dict[str, float] = {}
            for ranking in (bm25.run[qid], dense.run.get(qid, [])):
                for rank, doc in enumerate(ranking, start=1):
                    scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
            result.run[qid] = sorted(scores, key=lambda d: (-scores[d], d))[:DEPTH]
        result.latencies_ms = [a + b for a, b in zip(bm25.latencies_ms, dense.latencies_ms, strict=True)]
        return result

    @staticmethod
    def score_fusion(bm25: BaselineRun, dense: BaselineRun, label: str) -> BaselineRun:
        """Each list's scores min-max normalised and summed, equal weights (``rag.documents.fuse_documents``)."""
        result = BaselineRun(f"score fusion BM25 + {label} (whole documents)", index_s=bm25.index_s + dense.index_s)
        for qid in bm25.run:
            started = time.perf_counter()
            lists = {name: list(zip(run.run.get(qid, []), run.scores.get(qid, []), strict=True))
                     for name, run in (("bm25", bm25), ("dense", dense))}
            result.run[qid] = [d.doc_id for d in fuse_documents(lists, document_of=str)][:DEPTH]
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.latencies_ms = [a + b + c for a, b, c in zip(bm25.latencies_ms, dense.latencies_ms,
                                                             result.latencies_ms, strict=True)]
        return result
