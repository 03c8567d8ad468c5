"""``rag eval``: run configurations over a test set and collect retrieval and answer metrics.

Indexes are cached under ``<index_dir>/eval-cache`` by corpus hash and chunker (the ingestion
manifest also keys them by parser version, chunker parameters and embedder), so a grid embeds each
corpus once per chunker and a second run embeds nothing.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eval.answers import contains_answer, exact_match, token_f1
from eval.beir import BeirDataset, load_answers, load_beir
from eval.configs import EvalConfig
from eval.faithfulness import AlignmentJudge, FaithfulnessJudge
from eval.metrics import DEFAULT_KS, evaluate_run
from eval.qa import QAItem
from ingest.manifest import config_key
from ingest.pipeline import FolderIngestor, PlannedFile
from rag.embedder import CachedEmbedder, SentenceTransformerEmbedder
from rag.generator import Generator, generator_from_settings
from rag.index import DocumentIndex
from rag.pipeline import QueryOptions, QueryPipeline
from rag.reranker import load_reranker
from rag.settings import Settings
from rag.types import Element, ElementType

log = logging.getLogger(__name__)

_INDEX_BATCH = 256  # documents chunked and embedded together
_PACKAGES = ("local-rag", "sentence-transformers", "chromadb", "llama-cpp-python", "rank-bm25", "torch")


@dataclass
class ConfigResult:
    """One configuration's numbers. ``run``: query id -> [(document id, score)], best first."""

    config: EvalConfig
    metrics: dict[str, float] = field(default_factory=dict)
    run: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    query_ms: dict[str, float] = field(default_factory=dict)  # retrieval time per query id
    carried_by: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # query -> top document -> chunks
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "metrics": self.metrics, "latency_ms": self.latency_ms,
                "notes": self.notes, "carried_by": self.carried_by}


@dataclass
class EvalReport:
    dataset: str
    layout: str  # "beir" or "qa"
    split: str
    queries: int
    ks: tuple[int, ...]
    results: list[ConfigResult]
    timings_s: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "layout": self.layout, "split": self.split, "queries": self.queries,
                "ks": list(self.ks), "results": [r.to_dict() for r in self.results], "timings_s": self.timings_s,
                "settings": self.settings, "versions": versions()}

    def table(self) -> str:
        lines = [f"{self.dataset} ({self.layout}, split {self.split}, {self.queries} queries)"]
        for result in self.results:
            lines.append(f"  {result.config.name} [answers: {result.config.answer_mode}]")
            lines.extend(f"    {name:<24} {value:.4f}" for name, value in result.metrics.items())
            lines.extend(f"    note: {note}" for note in result.notes)
        lines.append("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings_s.items()))
        return "\n".join(lines)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


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
            if (entry := ingestor.manifest.get(p.key)) is None
            or entry.config_key != config or entry.content_hash != p.content_hash]
    if todo:
        for start in tqdm(range(0, len(todo), _INDEX_BATCH), desc=f"indexing {dataset.name}", unit="batch"):
            ingestor.index_documents(todo[start:start + _INDEX_BATCH], config)
        ingestor.save()
    return ingestor


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "mean": statistics.fmean(ordered)}


def _config_settings(settings: Settings, config: EvalConfig) -> Settings:
    return settings.with_overrides(chunker=config.chunker, retrieval_mode=config.mode, rerank=config.rerank,
                                   query_expansion=list(config.expansion), answer_mode=config.answer_mode)


class Evaluator:
    """Runs configurations; models are loaded once and shared by every configuration."""

    def __init__(self, settings: Settings, ks: tuple[int, ...] = DEFAULT_KS, limit: int | None = None,
                 judge: FaithfulnessJudge | None = None) -> None:
        self.settings = settings
        self.ks = ks
        self.limit = limit
        self.embedder = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size)
        self.judge = judge or AlignmentJudge(self.embedder)
        self._generator: Generator | None = None
        self._reranker = None
        self.ingest_summaries: dict[str, str] = {}  # QA document folders' ingest reports, by folder and chunker

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = generator_from_settings(self.settings)
        return self._generator

    def reranker(self):
        if self._reranker is None:
            self._reranker = load_reranker(self.settings.reranker_model, CachedEmbedder(self.embedder),
                                           tuple(self.settings.embedder_languages), self.settings.reranker_fallback)
        return self._reranker

    def _cache(self, name: str) -> Path:
        return Path(self.settings.index_dir) / "eval-cache" / name

    # --- BEIR layout ----------------------------------------------------------------------------
    def beir(self, folder: Path, configs: list[EvalConfig], split: str | None = None,
             answers: bool = False) -> EvalReport:
        dataset = load_beir(folder, split)
        qids = sorted(dataset.qrels)[: self.limit] if self.limit else sorted(dataset.qrels)
        qa_items = self._beir_qa_items(folder, dataset, qids) if answers else []
        timings: dict[str, float] = {}
        results = []
        for chunker, group in _by_chunker(configs).items():
            started = time.perf_counter()
            settings = self.settings.with_overrides(
                chunker=chunker, index_dir=self._cache(f"{dataset.name}-{dataset.corpus_hash}-{chunker}"))
            ingestor = build_index(dataset, settings, self.embedder)
            timings[f"index {chunker}"] = time.perf_counter() - started
            for config in group:
                started = time.perf_counter()
                result = self._retrieval(dataset, qids, ingestor.index, config)
                if qa_items:
                    self._answers(qa_items, ingestor.index, config, result)
                results.append(result)
                timings[config.name] = time.perf_counter() - started
        return EvalReport(dataset.name, "beir", dataset.split, len(qids), self.ks, results, timings,
                          self.settings.public_dump())

    def _retrieval(self, dataset: BeirDataset, qids: list[str], index: DocumentIndex,
                   config: EvalConfig) -> ConfigResult:
        result = ConfigResult(config)
        depth = max(max(self.ks), self.settings.candidates)
        pipeline = self._pipeline(index, config, candidates=depth)
        if config.rerank and (fallback := self.reranker()[1]):
            result.notes.append(fallback)
        latencies = []
        for qid in tqdm(qids, desc=f"retrieving {config.name}", unit="query"):
            started = time.perf_counter()
            documents = pipeline.search(dataset.queries[qid], depth=depth).documents  # the answers' own retrieval
            latencies.append((time.perf_counter() - started) * 1000)
            result.query_ms[qid] = latencies[-1]
            result.run[qid] = [(d.source, d.score) for d in documents]
            result.carried_by[qid] = {d.source: list(d.chunk_ids) for d in documents[:10]}
        qrels = {q: dataset.qrels[q] for q in qids}
        result.metrics = evaluate_run({q: [d for d, _ in r] for q, r in result.run.items()}, qrels, self.ks)
        result.latency_ms = {f"retrieval_{k}": v for k, v in _percentiles(latencies).items()}
        return result

    @staticmethod
    def _beir_qa_items(folder: Path, dataset: BeirDataset, qids: list[str]) -> list[QAItem]:
        gold = load_answers(folder)
        return [QAItem(q, dataset.queries[q], tuple(gold[q]), next(iter(dataset.qrels[q])), (), True)
                for q in qids if q in gold]

    # --- answers --------------------------------------------------------------------------------
    def _pipeline(self, index: DocumentIndex, config: EvalConfig, candidates: int | None = None) -> QueryPipeline:
        """A pipeline for one configuration over one index, sharing the loaded models; ``candidates``: hits taken
        from each retriever (retrieval metrics look deeper than answers do)."""
        settings = _config_settings(self.settings, config).with_overrides(candidates=candidates)
        pipeline = QueryPipeline(settings, index, self.embedder, self.generator)
        if config.rerank:
            pipeline.use_reranker(*self.reranker())
        return pipeline

    def _answers(self, items: list[QAItem], index: DocumentIndex, config: EvalConfig, result: ConfigResult) -> None:
        pipeline = self._pipeline(index, config)
        rows = []
        for item in tqdm(items, desc=f"answering {config.name} ({config.answer_mode})", unit="question"):
            started = time.perf_counter()
            answer = pipeline.answer(item.question, QueryOptions())
            seconds = time.perf_counter() - started
            cited = [(c.source, c.page) for c in answer.citations]
            pages = item.pages
            row: dict[str, Any] = {
                "id": item.id, "question": item.question, "answerable": item.answerable, "kind": item.category,
                "abstained": answer.abstained, "answer": answer.text, "citations": cited, "seconds": seconds,
                "stages_ms": dict(answer.trace.timings_ms),
                "citation_correct": any(s == item.source and (not pages or p in pages) for s, p in cited),
                "exact_match": exact_match(answer.text, item.answers) if item.answers else None,
                "token_f1": token_f1(answer.text, item.answers) if item.answers else None,
                "contains_answer": contains_answer(answer.text, item.answers) if item.answers else None,
                "short_answer": answer.short_answer,
                "short_focus": answer.trace.details.get("short_answer", {}).get("focus"),
                "short_exact_match": exact_match(answer.short_answer, item.answers)
                if item.answers and answer.short_answer is not None else None,
                "short_token_f1": token_f1(answer.short_answer, item.answers)
                if item.answers and answer.short_answer is not None else None,
            }
            if not answer.abstained:
                # The sources as the answer saw them (merged sentence windows), not as stored.
                contexts = [s["context"] for s in answer.trace.details.get("sources", [])]
                faithful = self.judge.judge(answer.text, contexts, answer.trace.details.get("language", "en"))
                row["faithfulness"] = faithful.score
                if faithful.notes:
                    row["faithfulness_notes"] = faithful.notes
            rows.append(row)
        result.rows = rows
        result.metrics.update(answer_metrics(rows))
        stages: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            for stage, ms in row["stages_ms"].items():
                if "." not in stage:
                    stages[stage].append(ms)
        result.latency_ms.update({f"{stage}_mean": statistics.fmean(v) for stage, v in stages.items()})
        result.latency_ms.update({f"answer_{k}": v * 1000 for k, v in
                                  _percentiles([r["seconds"] for r in rows]).items()})

    # --- QA layout ------------------------------------------------------------------------------
    def qa(self, path: Path, docs: Path, items: list[QAItem], configs: list[EvalConfig]) -> EvalReport:
        if not docs.is_dir():
            raise FileNotFoundError(f"{docs}: document folder not found (--docs)")
        timings: dict[str, float] = {}
        results = []
        digest = hashlib.sha256(str(docs.resolve()).encode()).hexdigest()[:12]
        for chunker, group in _by_chunker(configs).items():
            started = time.perf_counter()
            settings = self.settings.with_overrides(chunker=chunker,
                                                    index_dir=self._cache(f"qa-{docs.name}-{digest}-{chunker}"))
            ingestor = FolderIngestor(settings, embedder=self.embedder)
            report = ingestor.run(docs, progress=False)
            self.ingest_summaries[f"{docs} ({chunker})"] = report.summary()
            if report.failed:
                log.warning("some documents failed to ingest: %s", report.failed)
            timings[f"index {chunker}"] = time.perf_counter() - started
            for config in group:
                started = time.perf_counter()
                result = ConfigResult(config)
                self._answers(items, ingestor.index, config, result)
                results.append(result)
                timings[f"{config.name} [{config.answer_mode}]"] = time.perf_counter() - started
        return EvalReport(path.stem, "qa", "-", len(items), self.ks, results, timings,
                          self.settings.public_dump())


def _by_chunker(configs: list[EvalConfig]) -> dict[str, list[EvalConfig]]:
    groups: dict[str, list[EvalConfig]] = {}
    for config in configs:
        groups.setdefault(config.chunker, []).append(config)
    return groups


def answer_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Means over the answerable questions (abstention over the unanswerable ones)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in answerable if not r["abstained"]]

    def mean(rs: list[dict[str, Any]], key: str) -> float | None:
        values = [float(r[key]) for r in rs if r.get(key) is not None]
        return sum(values) / len(values) if values else None

    metrics = {
        "exact_match": mean(answerable, "exact_match"),
        "token_f1": mean(answerable, "token_f1"),
        "answer_contains_gold": mean(answerable, "contains_answer"),
        "citation_accuracy": mean(answerable, "citation_correct"),
        "false_abstention": mean(answerable, "abstained"),
        "abstention_unanswerable": mean(unanswerable, "abstained"),
        "faithfulness": mean([r for r in rows if not r["abstained"]], "faithfulness"),
        "answered": float(len(answered)),
    }
    # The short answer (rag.short): over the answerable questions that got one, and with none (or an abstention)
    # counted as 0 over those answered and over all answerable ones.
    shortened = [r for r in answerable if r.get("short_answer") is not None and r.get("short_token_f1") is not None]
    for key in ("short_exact_match", "short_token_f1"):
        metrics[key] = mean(shortened, key)
        for name, group in (("answered", answered), ("all", answerable)):
            scored = [r for r in group if r.get("exact_match") is not None]
            if scored:
                metrics[f"{key}_{name}"] = sum(float(r.get(key) or 0.0) for r in scored) / len(scored)
    if answered:
        metrics["short_answered"] = len(shortened) / len(answered)
    # Per kind of question (near-miss, far-off, paraphrase, table…), when a set names kinds.
    kinds = sorted({r.get("kind", "") for r in rows} - {"", "answerable", "unanswerable"})
    for kind in kinds:
        group = [r for r in rows if r.get("kind") == kind]
        key = kind.replace("-", "_")
        if all(not r["answerable"] for r in group):
            metrics[f"abstention_{key}"] = mean(group, "abstained")
        else:
            metrics[f"answer_contains_gold_{key}"] = mean(group, "contains_answer")
            metrics[f"false_abstention_{key}"] = mean(group, "abstained")
    return {k: v for k, v in metrics.items() if v is not None}
