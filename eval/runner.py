"""``rag eval``: index a BEIR corpus once (cached by corpus hash and ingestion config), retrieve, score."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eval.beir import BeirDataset, load_beir
from eval.metrics import evaluate_run
from ingest.manifest import config_key
from ingest.pipeline import FolderIngestor, PlannedFile
from rag.analysis import detect_language
from rag.embedder import SentenceTransformerEmbedder
from rag.retriever import HybridRetriever, fusion_weights
from rag.settings import Settings
from rag.types import Element, ElementType

log = logging.getLogger(__name__)

_INDEX_BATCH = 256  # documents chunked and embedded together


@dataclass
class EvalReport:
    dataset: str
    split: str
    mode: str
    chunker: str
    queries: int
    metrics: dict[str, float]
    timings_s: dict[str, float] = field(default_factory=dict)
    run: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "split": self.split, "mode": self.mode, "chunker": self.chunker,
                "queries": self.queries, "metrics": self.metrics, **self.metrics,
                "timings_s": self.timings_s}

    def table(self) -> str:
        lines = [f"{self.dataset} ({self.split}, {self.queries} queries), retrieval={self.mode}, "
                 f"chunker={self.chunker}"]
        lines.extend(f"  {name:<14} {value:.4f}" for name, value in self.metrics.items())
        lines.append("  " + ", ".join(f"{k}: {v:.1f}s" for k, v in self.timings_s.items()))
        return "\n".join(lines)


def _documents(dataset: BeirDataset) -> list[tuple[PlannedFile, list[Element]]]:
    docs = []
    for doc in dataset.corpus:
        elements = [Element(doc.title, doc.id, None, ElementType.TITLE)] if doc.title.strip() else []
        elements.append(Element(doc.text, doc.id, None, ElementType.TEXT, section=doc.title or None))
        digest = hashlib.sha256(f"{doc.title}\n{doc.text}".encode()).hexdigest()
        docs.append((PlannedFile(Path(doc.id), doc.id, f"beir:{doc.id}", digest), elements))
    return docs


def build_index(dataset: BeirDataset, settings: Settings, embedder: SentenceTransformerEmbedder) -> FolderIngestor:
    """Index the corpus unless the cache already holds it with the same ingestion config."""
    ingestor = FolderIngestor(settings, embedder=embedder)
    config = config_key(ingestor.config_parts(".beir"))
    todo = [(p, e) for p, e in _documents(dataset)
            if (entry := ingestor.manifest.files.get(p.key)) is None
            or entry.config_key != config or entry.content_hash != p.content_hash]
    if todo:
        for start in tqdm(range(0, len(todo), _INDEX_BATCH), desc=f"indexing {dataset.name}", unit="batch"):
            ingestor.index_documents(todo[start:start + _INDEX_BATCH], config)
        ingestor.save()
    return ingestor


def evaluate_beir(folder: Path, settings: Settings, split: str | None = None, ks: tuple[int, ...] = (1, 5, 10),
                  index_dir: Path | None = None, mode: str = "hybrid", candidates: int = 100) -> EvalReport:
    dataset = load_beir(folder, split)
    cache = index_dir or (Path(settings.index_dir) / "eval-cache" /
                          f"{dataset.name}-{dataset.corpus_hash}-{settings.chunker}")
    settings = settings.with_overrides(index_dir=cache)
    embedder = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size)
    started = time.perf_counter()
    ingestor = build_index(dataset, settings, embedder)
    indexed = time.perf_counter()
    retriever = HybridRetriever(ingestor.index, embedder, candidates=candidates, rrf_k=settings.rrf_k, mode=mode,
                                weights=fusion_weights(settings))
    run: dict[str, list[str]] = {}
    for qid in tqdm(sorted(dataset.qrels), desc="retrieving", unit="query"):
        text = dataset.queries[qid]
        hits = retriever.retrieve(text, detect_language(text), top_k=candidates).hits
        ranking: list[str] = []
        for hit in hits:  # a document ranks where its best chunk ranks
            if hit.chunk.metadata.source not in ranking:
                ranking.append(hit.chunk.metadata.source)
        run[qid] = ranking
    finished = time.perf_counter()
    metrics = evaluate_run(run, dataset.qrels, ks)
    return EvalReport(dataset.name, dataset.split, mode, settings.chunker, len(dataset.qrels), metrics,
                      {"index": indexed - started, "retrieval": finished - indexed}, run)
