"""The query pipeline: language -> hybrid retrieval -> relevance gate -> prompt -> generation -> grounding."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import zip_longest

import numpy as np

from rag.analysis import detect_language, split_sentences
from rag.answerability import DEFAULT_PATH as ANSWERABILITY_PATH
from rag.answerability import AnswerabilityModel, unit_features
from rag.backend import open_backend
from rag.compression import ContextCompressor, merge_windows
from rag.documents import DocumentHit, FusedDocument, rank_documents
from rag.embedder import (
    CachedEmbedder,
    Embedder,
    SentenceTransformerEmbedder,
    dense_embedder,
    dense_model_id,
    embed_queries,
)
from rag.errors import InvalidRequest
from rag.expansion import QueryExpander, unproductive_expansions
from rag.focus import FocusCheck
from rag.followup import contextualize, is_follow_up, rewrite_with_model
from rag.generator import (
    TEMPLATE_TOKENS_PER_MESSAGE,
    Generator,
    Message,
    SamplingParams,
    generator_from_settings,
    token_counter,
)
from rag.enumeration import asks_list, family, item_order, lead_of
from rag.grounding import Grounder, Unit, cited_indices, list_items, renumber_citations, source_units
from rag.index import DocumentIndex
from rag.prompt import ABSTENTION, abstention, build_messages
from rag.reranker import Reranker, load_reranker
from rag.retriever import Filters, HybridRetriever
from rag.settings import AnswerMode, Settings
from rag.short import short_answer, short_focus
from rag.titles import TITLE_SENTENCES, asked_kind, span_in, title_of
from rag.types import Answer, Chunk, Citation, ScoredChunk, Trace

log = logging.getLogger(__name__)
# How many chunks before and after a hit a sentence quoted from its (possibly merged) window is looked for.
_QUOTE_REACH = 12

# A generated sentence is supported when all its numbers occur in the sources, at least this share
# of its content terms do, and its best cosine to a source sentence reaches MIN_SEMANTIC_SUPPORT.
MIN_LEXICAL_SUPPORT = 0.6
MIN_SEMANTIC_SUPPORT = 0.45
# ... and at least this share of its content terms occur in one source sentence in the same order (word salad
# made of a source's words fails it), with the same names and negation as that sentence.
MIN_ORDERED_SUPPORT = 0.5
# The answerability model re-scores this many of the rule score's best units (the dense model embeds each once;
# on XQuAD the unit holding the answer is outside the rule score's best 16 for 4 of 436 answerable questions).
MODEL_SHORTLIST = 16
# Extractive answers also quote the runner-up unit when it scores this share of the best one.
QUOTE_RELATIVE_SCORE = 0.95
MAX_LIST_ITEMS = 16  # a list question quotes its lead-in and at most this many items


@dataclass(frozen=True)
class QueryOptions:
    """Per-request overrides; None means "use the settings"."""

    top_k: int | None = None
    filters: Filters | None = None
    answer_mode: AnswerMode | None = None
    retrieval_mode: str | None = None
    rerank: bool | None = None
    expansion: tuple[str, ...] | None = None
    sampling: SamplingParams | None = None
    history: tuple[Message, ...] = ()


@dataclass
class Search:
    """What the retrieval step found: the question's language and parts (sub-questions), candidates best
    first (re-ranked when asked), and the trace so far."""

    question: str
    language: str
    parts: list[str]
    hits: list[ScoredChunk]
    trace: Trace
    # Which documents say it, best first, with the chunks that carried each (rag/documents.py).
    documents: list[DocumentHit] = field(default_factory=list)


@dataclass
class Gated:
    """Past the gates: the sources for the answer and the quotes (unit, score) that answer the question."""

    sources: list[ScoredChunk]
    quotes: list[tuple[Unit, float]]


def _interleave(rankings: list[list[ScoredChunk]]) -> list[ScoredChunk]:
    """Round-robin over several rankings (one per sub-question), each chunk once."""
    if len(rankings) == 1:
        return rankings[0]
    seen: set[str] = set()
    merged: list[ScoredChunk] = []
    for row in zip_longest(*rankings):
        for hit in row:
            if hit is not None and hit.chunk.id not in seen:
                seen.add(hit.chunk.id)
                merged.append(hit)
    return merged


@contextmanager
def _timed(trace: Trace, stage: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        trace.timings_ms[stage] = trace.timings_ms.get(stage, 0.0) + (time.perf_counter() - started) * 1000


class QueryPipeline:
    """Answers a question from the indexed documents, with citations, or abstains.

    >>> QueryPipeline.from_settings(Settings()).answer("¿Qué dosis máxima de paracetamol en adultos?")
    """

    def __init__(self, settings: Settings, index: DocumentIndex, embedder: Embedder, generator: Generator) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.generator = generator
        # Query-time parts embed the same document sentences for every question about them.
        self._query_embedder = CachedEmbedder(embedder)
        # The dense index's model (multilingual E5 by default) embeds the queries; the judge embedder above
        # scores evidence, grounding and compression, where its calibration holds.
        self.dense = dense_embedder(settings.dense_model, embedder, settings.embed_batch_size,
                                    settings.query_embed_runtime)
        # The search and the evidence gate's answerability model share the dense model's vectors: the question's
        # (embedded once) and the sources' sentences.
        self._dense_cached = CachedEmbedder(self.dense)
        self.retriever = HybridRetriever.from_settings(index, self._dense_cached, settings,
                                                       legacy_vector_model=getattr(embedder, "model_id", None))
        self.answerability, self._answerability_note = _answerability_model(settings)
        if self._answerability_note:
            log.warning("%s", self._answerability_note)
        self.grounder = Grounder(self._query_embedder, idf=index.idf)
        self.expander = QueryExpander(generator)
        count, self._exact_tokens = token_counter(generator)
        self.compressor = ContextCompressor(self._query_embedder, count)
        self._reranker: Reranker | None = None
        self._reranker_fallback: str | None = None
        self._reranker_lock = threading.Lock()
        # doc_id -> file name, for naming fused documents: a doc_id is a hash of the file's key, so the pair
        # never changes (read once per document, not once per question: ~0.25 ms a chunk).
        self._sources: dict[str, str] = {}
        self._warming = False  # a warm-up is running: not ready yet
        self._warmed = False  # a warm-up finished: never warmed again

    @property
    def reranker(self) -> Reranker:
        """Loaded on first use; the fallback reason (if any) is logged once, when it is loaded."""
        with self._reranker_lock:
            if self._reranker is None:
                self._reranker, self._reranker_fallback = load_reranker(
                    self.settings.reranker_model, self._query_embedder, tuple(self.settings.embedder_languages),
                    self.settings.reranker_fallback)
        return self._reranker

    def use_reranker(self, reranker: Reranker, fallback_reason: str | None = None) -> None:
        """Share an already loaded re-ranker (the evaluation runs many pipelines over one model)."""
        with self._reranker_lock:
            self._reranker, self._reranker_fallback = reranker, fallback_reason

    def sibling(self, settings: Settings) -> QueryPipeline:
        """A pipeline over another collection (``settings.for_collection``) that shares this one's loaded
        models: embedder (and its sentence cache), generator and re-ranker."""
        other = QueryPipeline(settings, open_backend(settings), self.embedder, self.generator)
        if settings.rerank:
            other.use_reranker(self.reranker, self._reranker_fallback)
        return other

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryPipeline:
        embedder = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size,
                                               runtime=settings.embedder_runtime)
        return cls(settings, open_backend(settings), embedder, generator_from_settings(settings))

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens the model reads: the chat template rendered with the model's tokenizer when it has one, else
        an estimate of the messages' text plus the template's markers."""
        exact = getattr(self.generator, "count_messages", None)
        if exact is not None:
            return exact(messages)
        text = self.compressor.count_tokens("\n".join(m["content"] for m in messages))
        return text + TEMPLATE_TOKENS_PER_MESSAGE * len(messages) + 8

    def warm_up(self) -> None:
        """Load the models and build the query-time caches now, so that no user question pays for them:
        the embedder, re-ranker and GGUF, the chunk store, the BM25 postings and the exact search's vectors (one
        retrieval per language). Idempotent: a pipeline already warmed (e.g. shared with a
        server that warms at start) stays ready and is not warmed again."""
        if self._warmed:
            return
        self._warming = True
        try:
            self.embedder.embed(["warm up"])
            if self.settings.retrieval_mode != "bm25" or self.answerability is not None:
                embed_queries(self.dense, ["warm up"])
            if self.settings.rerank:
                _ = self.reranker
            warm = getattr(self.generator, "warm_up", None)
            if warm is not None:
                warm()
            self.index.count()  # opens the chunk store (an index from before it: copied out of Chroma, once)
            for language in ("es", "en"):
                self.retriever.retrieve("warm up", language, top_k=1)
            self._warmed = True
        finally:
            self._warming = False

    @property
    def ready(self) -> bool:
        """Models loaded (backends without a load step count as loaded) and, once a warm-up started, done."""
        if self._warming:
            return False
        return all(getattr(part, "loaded", True) for part in (self.embedder, self.generator))

    def effective_mode(self, options: QueryOptions | None = None) -> AnswerMode:
        """The answer mode a request runs in: ``auto`` without a capable model quotes (``extractive``)."""
        mode = self.settings.answer_mode if options is None or options.answer_mode is None else options.answer_mode
        return "extractive" if mode == "auto" and not self.settings.generates_in_auto else mode

    def needs_model(self, options: QueryOptions | None = None) -> bool:
        """Whether answering may use the LLM (generation or LLM query expansion): such requests queue for it."""
        kinds = self.settings.query_expansion if options is None or options.expansion is None else options.expansion
        return self.effective_mode(options) != "extractive" or bool({"multi-query", "hyde"} & set(kinds))

    def chat(self, messages: list[Message], params: SamplingParams | None = None) -> Iterator[str]:
        """Plain chat with the model, no documents (the API's ``use_context: false``)."""
        yield from self.generator.stream(messages, params or SamplingParams.from_settings(self.settings))

    def answer(self, question: str, options: QueryOptions | None = None) -> Answer:
        answer = None
        for event in self.stream(question, options):
            if isinstance(event, Answer):
                answer = event
        if answer is None:
            raise RuntimeError("pipeline produced no answer")
        return answer

    def search(self, question: str, options: QueryOptions | None = None, depth: int | None = None) -> Search:
        """The one retrieval step (answers, ``/v1/chunks``, evaluation and benchmarks all use it): language,
        query expansion, hybrid retrieval of ``depth`` candidates (default: ``candidates``) and re-ranking of
        the first ``rerank_candidates`` per part of the question; the others keep their order below them."""
        opts = options or QueryOptions()
        trace = Trace()
        with _timed(trace, "language"):
            language = detect_language(question)
        trace.details["language"] = language
        earlier = [m["content"] for m in opts.history if m.get("role") == "user"]
        if earlier and is_follow_up(question, language):
            # A follow-up ("¿Y las leves?") is searched with the topic of the question before it: rewritten by
            # a capable model, else (or when its rewrite is unusable) by rules.
            searched, how = None, "rules"
            if self.settings.generates_in_auto:
                with _timed(trace, "follow_up"):
                    searched, how = rewrite_with_model(self.generator, question, earlier, language), "model"
            if searched is None:
                searched, how = contextualize(question, earlier, language), "rules"
            if searched != question:
                trace.details["follow_up"] = {"asked": question, "searched": searched, "by": how}
                question = searched
        kinds = tuple(self.settings.query_expansion if opts.expansion is None else opts.expansion)
        with _timed(trace, "expansion"):
            expansions = self.expander.expand(question, language, kinds) if kinds else []
        trace.details["expansions"] = [{"kind": e.kind, "text": e.text} for e in expansions if e.kind != "original"]
        trace.notes.extend(unproductive_expansions(kinds, expansions))
        with _timed(trace, "retrieval"):
            retrieved = self.retriever.retrieve(question, language, top_k=depth or self.settings.candidates,
                                                filters=opts.filters, mode=opts.retrieval_mode,
                                                expansions=expansions)
        trace.timings_ms.update({f"retrieval.{k}": v for k, v in retrieved.timings_ms.items()})
        trace.details["retrieval"] = {"mode": opts.retrieval_mode or self.retriever.mode, **retrieved.details}
        hits = retrieved.hits
        # A multi-part question is re-ranked, gated and grounded per part, so that each part gets its sources.
        parts = [e.text for e in expansions if e.kind == "sub-question"] or [question]
        reranked = self.settings.rerank if opts.rerank is None else opts.rerank
        if reranked:
            with _timed(trace, "rerank"):
                reranker = self.reranker
                pool, rest = hits[:self.settings.rerank_candidates], hits[self.settings.rerank_candidates:]
                head = _interleave([reranker.rerank(part, pool) for part in parts])
                floor = min((h.score for h in head), default=0.0)
                hits = head + [h.rescored(floor - 1 - i) for i, h in enumerate(rest)]
            trace.details["reranker"] = reranker.name
            if self._reranker_fallback:
                trace.details["reranker_fallback"] = self._reranker_fallback
        # Which documents say it, and which chunks carried each ("which document says X" questions): from the
        # retrievers' scored lists, unless a re-ranking model re-ordered the chunks (its order is then the better
        # judge) or the settings ask for the chunk order.
        by_model = reranked and self._reranker_fallback is None
        if by_model or self.settings.document_ranking == "chunks" or not retrieved.documents:
            documents = rank_documents(hits, self.settings.document_decay)
        else:
            documents = self._named(retrieved.documents[:max(depth or 0, 5)], hits)
        trace.details["documents"] = [d.to_dict() for d in documents[:5]]
        return Search(question, language, parts, hits, trace, documents)

    def _named(self, documents: list[FusedDocument], hits: list[ScoredChunk]) -> list[DocumentHit]:
        """The documents with their file names: read off the hits, else remembered, else off each one's best chunk
        (one read for all of them)."""
        sources = self._sources
        if len(sources) > 200_000:
            sources.clear()
        sources.update({Chunk.document_id(h.chunk.id): h.chunk.metadata.source for h in hits})
        missing = [d.chunk_ids[0] for d in documents if d.doc_id not in sources]
        if missing:
            sources.update({Chunk.document_id(cid): chunk.metadata.source
                            for cid, chunk in self.index.get(missing).items()})
        return [DocumentHit(sources[d.doc_id], d.score, d.chunk_ids) for d in documents if d.doc_id in sources]

    def stream(self, question: str, options: QueryOptions | None = None) -> Iterator[str | Answer]:
        """Yields generated text pieces as they come, then the final ``Answer``: search, gate (relevance and
        evidence; abstain or quote), generate, ground."""
        question = question.strip()
        if not question:
            raise InvalidRequest("question must not be empty")
        opts = options or QueryOptions()
        found = self.search(question, opts)
        trace, language = found.trace, found.language
        gated = self._gate(found, self.settings.top_k if opts.top_k is None else opts.top_k)
        if isinstance(gated, Answer):
            yield gated
            return
        mode = self.effective_mode(opts)
        if mode == "extractive":
            if (opts.answer_mode or self.settings.answer_mode) == "auto":
                trace.notes.append("answered with the evidence's own sentences: the configured model is not "
                                   "declared capable of grounded answers (RAG_LLM_CAPABLE=true to generate)")
            yield self._with_short(self._extractive(gated.quotes, gated.sources, trace), found.question, language)
            return
        params = opts.sampling or SamplingParams.from_settings(self.settings)
        prompt_sources = self._prompt_sources(question, gated.sources, language, params, list(opts.history), trace)
        messages = build_messages(question, prompt_sources, language, list(opts.history))
        pieces: list[str] = []
        with _timed(trace, "generation"):
            for piece in self.generator.stream(messages, params):
                pieces.append(piece)
                yield piece
        generated = "".join(pieces).strip()
        trace.details["generator"] = self.generator.model_id
        trace.details["generated"] = generated
        yield self._with_short(self._grounded(generated, gated.quotes, gated.sources, prompt_sources, language, mode,
                                              trace), found.question, language)

    def sources(self, found: Search, top_k: int) -> tuple[list[ScoredChunk], list[str]]:
        """The ``top_k`` distinct passages of a search (overlapping sentence windows merge, so candidates are
        taken until ``top_k`` remain), each rescored with its relevance (the judge embedder's cosine to the
        closest part of the question); and the windows merged."""
        sources, merged = merge_windows(found.hits[:top_k * 3])
        sources = sources[:top_k]
        relevance = [max(scores) for scores in zip(*(self.grounder.relevance(p, sources) for p in found.parts),
                                                   strict=True)] if sources else []
        return [hit.rescored(score) for hit, score in zip(sources, relevance, strict=True)], merged

    def unit_features(self, question: str, sources: list[ScoredChunk], language: str, units: list[Unit],
                      part_of: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rule scores of ``units`` for the question, the positions of the ``MODEL_SHORTLIST`` best of them
        by that score, and their answerability features (``FEATURES``, one row per shortlisted unit; the dense
        model embeds only those). ``part_of``: how many parts the asked question has; the sources of a
        several-part question take turns between its parts, so each part ranks them by its own relevance."""
        scores = self.grounder.unit_scores(question, sources, language, units)
        keep = np.array([i for i in np.argsort(-scores.score, kind="stable") if not units[i].is_table_row]
                        [:MODEL_SHORTLIST], dtype=int)
        query = self._dense_cached.embed_queries([question])[0]
        dense_cosine = self._dense_cached.embed([units[i].scored for i in keep]) @ query
        relevance = [s.score for s in sources]
        ranks = None
        if part_of > 1:
            relevance = self.grounder.relevance(question, sources)
            ranks = (np.argsort(np.argsort(-np.array(relevance), kind="stable")) + 1).tolist()
        rows = unit_features(scores.subset(keep), dense_cosine, relevance, [units[i] for i in keep], language, ranks,
                             [s.chunk.metadata.language for s in sources])
        return scores.score, keep, rows

    def evidence(self, question: str, sources: list[ScoredChunk], language: str, units: list[Unit],
                 max_units: int = 3, part_of: int = 1) -> list[tuple[Unit, float]]:
        """The units that best answer the question (or one part of it), best first, with the score the evidence
        gate reads: the answerability model's probability for the rule score's best sentences and the rule score
        (on the model's scale) for table rows; or the rule score alone (``evidence_gate=scores``, or no usable
        model)."""
        if not units:
            return []
        if self.answerability is None:
            return self.grounder.extract(question, sources, language, max_units=max_units, units=units)
        rule, keep, rows = self.unit_features(question, sources, language, units, part_of)
        scored = list(zip(keep.tolist(), self.answerability.probabilities(rows).tolist(), strict=True))
        # Table rows keep the rule score (the model never saw one), put on the model's scale so that a row
        # passes the gate exactly when its rule score reaches min_evidence.
        scale = self.evidence_threshold / self.settings.min_evidence if self.settings.min_evidence > 0 else 1.0
        scored += [(i, min(1.0, max(0.0, float(rule[i]) * scale))) for i, u in enumerate(units) if u.is_table_row]
        scored.sort(key=lambda pair: -pair[1])
        return [(units[i], score) for i, score in scored[:max_units]]

    @property
    def evidence_threshold(self) -> float:
        if self.answerability is None:
            return self.settings.min_evidence
        if self.settings.min_answerability is not None:
            return self.settings.min_answerability
        return self.answerability.threshold

    def _gate(self, found: Search, top_k: int) -> Gated | Answer:
        """Sources for the answer and the quotes that answer each part, or an abstention: the index is empty,
        no source is relevant enough, or no sentence or table row is evidence enough (focus included)."""
        trace, language, parts = found.trace, found.language, found.parts
        with _timed(trace, "relevance"):
            sources, merged = self.sources(found, top_k)
        if merged:
            trace.details["merged_windows"] = merged
        trace.details["sources"] = [{"chunk_id": h.chunk.id, "relevance": round(h.score, 4), "ranks": h.ranks,
                                     "context": h.chunk.context_text} for h in sources]
        best = max((h.score for h in sources), default=0.0)
        if not sources and self.index.count() == 0:
            return self._abstain(language, trace, "the index is empty: ingest documents first "
                                                  "(rag ingest FOLDER, or POST /v1/ingest/file)")
        if best < self.settings.min_relevance:
            return self._abstain(language, trace, f"best source relevance {best:.3f} below min_relevance "
                                                  f"{self.settings.min_relevance}")
        trace.details["focus"] = [FocusCheck.of(part, language).describe() for part in parts]
        threshold = self.evidence_threshold
        gate = "answerability model" if self.answerability is not None else "rule score"
        trace.details["evidence_gate"] = {"by": gate, "threshold": round(threshold, 4)}
        if self._answerability_note:
            trace.notes.append(self._answerability_note)
        with _timed(trace, "evidence"):
            units = source_units(sources)  # split once, for every part of the question
            per_part = [self.evidence(part, sources, language, units, part_of=len(parts)) for part in parts]
        trace.details["evidence"] = [{"text": u.quoted, "score": round(score, 4), "source": u.source_index}
                                     for found_units in per_part for u, score in found_units]
        best_evidence = max((f[0][1] for f in per_part if f), default=0.0)
        if best_evidence < threshold:
            best_unit = max((f[0] for f in per_part if f), key=lambda pair: pair[1], default=None)
            said = f' (best: "{_clip(best_unit[0].quoted)}" [{best_unit[0].source_index}])' if best_unit else ""
            return self._abstain(language, trace, f"best evidence score {best_evidence:.3f} ({gate}) below "
                                                  f"{threshold:.3f}{said}: the sources do not answer the question")
        quotes: list[tuple[Unit, float]] = []
        for f in per_part:
            if f and f[0][1] >= threshold:
                quotes.extend((u, score) for u, score in f[:2] if score >= QUOTE_RELATIVE_SCORE * f[0][1]
                              and u.text not in {q.text for q, _ in quotes})
        if quotes and len(parts) == 1 and asks_list(found.question) and asked_kind(found.question) is None:
            # "¿Qué órganos…?": the list of the best unit that is an item or a lead-in (among the evidence over
            # the threshold): its lead-in and every item the sources hold, in order.
            for unit, score in per_part[0]:
                listed = list_items(unit, units)[:MAX_LIST_ITEMS] if score >= threshold else []
                if listed:
                    listed, sources = self._whole_list(listed, sources)
                    trace.details["list"] = {"lead_in": listed[-1].lead, "items": len(listed)}
                    quotes = [(u, score) for u in listed]
                    break
        kind = asked_kind(found.question) if quotes and len(parts) == 1 and "list" not in trace.details else None
        if kind is not None:
            quotes, sources = self._with_title(kind, quotes, sources, trace)
        return Gated(sources, quotes)

    def _with_title(self, kind: str, quotes: list[tuple[Unit, float]], sources: list[ScoredChunk], trace: Trace
                    ) -> tuple[list[tuple[Unit, float]], list[ScoredChunk]]:
        """A "which law / which document" question: the best quote's document's title (``rag.titles``, from its
        first chunks) quoted first, as a source of its own with its page."""
        meta = sources[quotes[0][0].source_index - 1].chunk.metadata
        first = self._document_chunks(meta.doc_id, {"ordinal": {"$lt": TITLE_SENTENCES}})
        if first is None:  # the answer stands without the title
            return quotes, sources
        sentences = [(sentence, chunk) for chunk in first for sentence in split_sentences(chunk.text)]
        title = title_of([s for s, _ in sentences], kind)
        if title is None:
            trace.details["document_title"] = {"asked": kind, "none": "no sentence of its opening names a kind"}
            return quotes, sources
        sentence, chunk = next((s, c) for s, c in sentences if " ".join(s.split()) == title)
        held = next((i for i, h in enumerate(sources, start=1) if h.chunk.id == chunk.id), None)
        if held is None:
            sources = sources + [ScoredChunk(chunk, min(h.score for h in sources), {})]
            held = len(sources)
        trace.details["document_title"] = {"asked": kind, "title": title, "chunk_id": chunk.id}
        unit = Unit(held, sentence)
        return [(unit, quotes[0][1])] + [q for q in quotes if q[0].text != sentence], sources

    def _document_chunks(self, doc_id: str, where: dict) -> list[Chunk] | None:
        """The chunks of one document that also match ``where``, in document order; None when the store cannot say
        (looked up on a best-effort basis: the answer stands without them)."""
        try:
            ids = self.index.allowed({"$and": [{"doc_id": doc_id}, where]})
            return sorted(self.index.get(sorted(ids)).values(), key=lambda c: c.metadata.ordinal)
        except Exception as exc:  # noqa: BLE001 - best effort
            log.debug("chunks of %s matching %s not looked up: %s", doc_id, where, exc)
            return None

    def _whole_list(self, listed: list[Unit], sources: list[ScoredChunk]) -> tuple[list[Unit], list[ScoredChunk]]:
        """The items of a list that the sources lack, read from the index (chunks of the same document with the
        same lead-in), each added as a source of its own so that each item is cited with its page."""
        lead = listed[-1].lead
        meta = sources[listed[-1].source_index - 1].chunk.metadata
        found = self._document_chunks(meta.doc_id, {"lead_in": lead})
        if found is None:  # a store that cannot filter so quotes what it has
            return listed, sources
        have = {" ".join(u.text.split()) for u in listed}
        missing = [c for c in found if " ".join(c.text.split()) not in have and family(c.text, True)
                   ][:max(0, MAX_LIST_ITEMS - len(listed))]
        if not missing:
            return listed, sources
        floor = min(h.score for h in sources)
        sources = sources + [ScoredChunk(c, floor, {}) for c in missing]
        added = [Unit(len(sources) - len(missing) + i + 1, c.text, lead, False) for i, c in enumerate(missing)]
        head = [u for u in listed if not u.lead]
        return head + sorted([u for u in listed if u.lead] + added, key=lambda u: item_order(u.text)), sources

    def _prompt_sources(self, question: str, sources: list[ScoredChunk], language: str, params: SamplingParams,
                        history: list[Message], trace: Trace) -> list[ScoredChunk]:
        """The sources compressed until the prompt, as the model reads it (chat template included), and the
        answer fit the model's context; a remote server's context is its own business."""
        with _timed(trace, "compression"):
            budget = self._context_budget(question, language, params, history)
            while True:
                prompt_sources, report = self.compressor.compress(question, sources, budget)
                prompt_tokens = self.count_prompt_tokens(build_messages(question, prompt_sources, language, history))
                over = prompt_tokens + params.max_tokens - self.settings.llm_context
                if over <= 0 or budget <= 64 or self.settings.llm_base_url or self.settings.context_tokens:
                    break
                budget = max(64, budget - over)
        trace.details["compression"] = report.to_dict()
        trace.details["prompt_tokens"] = prompt_tokens if self._exact_tokens else f"~{prompt_tokens} (estimated)"
        return prompt_sources

    def _context_budget(self, question: str, language: str, params: SamplingParams,
                        history: list[Message]) -> int:
        """Tokens left for the sources: the context window minus instructions, question and the answer."""
        if self.settings.context_tokens:
            return self.settings.context_tokens
        frame = build_messages(question, [], language, history)
        fixed = self.compressor.count_tokens("\n".join(m["content"] for m in frame))
        return max(64, self.settings.llm_context - params.max_tokens - fixed - 64)  # 64: chat-template tokens

    def _grounded(self, generated: str, quotes: list[tuple[Unit, float]], evidence_sources: list[ScoredChunk],
                  sources: list[ScoredChunk],
                  language: str, mode: AnswerMode, trace: Trace) -> Answer:
        if not generated or any(msg.rstrip(".") in generated for msg in ABSTENTION.values()):
            trace.details["abstain_reason"] = "the model said the sources do not contain the answer"
            return self._abstain(language, trace)
        with _timed(trace, "grounding"):
            support = self.grounder.support(generated, sources, language)
        trace.details["support"] = [{"sentence": s.sentence, "semantic": round(s.semantic, 4),
                                     "lexical": round(s.lexical, 4), "ordered": round(s.ordered, 4),
                                     "numbers_ok": s.numbers_ok, "names_ok": s.names_ok,
                                     "negation_ok": s.negation_ok,
                                     "source": s.source_index} for s in support]
        supported = bool(support) and all(s.supported(MIN_SEMANTIC_SUPPORT, MIN_LEXICAL_SUPPORT, MIN_ORDERED_SUPPORT)
                                           for s in support)
        if not supported and mode == "auto":
            trace.notes.append("generated answer not supported by the sources; answered with quotes instead")
            return self._extractive(quotes, evidence_sources, trace)
        if not supported:
            trace.details["supported"] = False
            trace.notes.append("generated answer not fully supported by the sources (see trace.support)")
        cited = cited_indices(generated, len(sources)) or sorted({s.source_index for s in support if s.source_index})
        text = renumber_citations(generated, cited)
        citations = [Citation.from_scored(sources[n - 1]) for n in cited]
        _note_ocr(citations, trace)
        return Answer(text, False, citations, trace)

    def _extractive(self, quotes: list[tuple[Unit, float]], sources: list[ScoredChunk], trace: Trace) -> Answer:
        trace.details["answer_mode"] = "extractive"
        # The same sentence can come twice (alone, and after its heading in another chunk): quote it once.
        kept: list[tuple[Unit, float]] = []
        seen: list[str] = []
        for unit, score in quotes:
            words = " ".join(unit.text.split())
            if not any(words in other or other in words for other in seen):
                kept.append((unit, score))
                seen.append(words)
        quotes = kept
        lines, lead = [], None
        for unit, _ in quotes:  # the items of one list after the first are quoted without the lead-in again
            lines.append(f"{unit.text.strip() if unit.lead and unit.lead == lead else unit.quoted} "
                         f"[{unit.source_index}]")
            lead = unit.lead or lead_of(unit.text)
        text = "\n".join(lines)
        cited = sorted({unit.source_index for unit, _ in quotes})
        citations = []
        for n in cited:
            # The quoted sentences first (the page is theirs), then the lead-ins they are quoted with.
            texts = tuple(u.text for u, _ in quotes if u.source_index == n)
            texts += tuple(u.lead for u, _ in quotes if u.source_index == n and u.lead and u.lead not in texts)
            citation = Citation.from_scored(sources[n - 1], texts)
            page = self.page_of_quote(sources[n - 1], texts[0])
            citations.append(replace(citation, page=page) if page != citation.page else citation)
        _note_ocr(citations, trace)
        return Answer(renumber_citations(text, cited), False, citations, trace)

    @staticmethod
    def _with_short(answer: Answer, question: str, language: str) -> Answer:
        """The answer with its short answer (``rag.short``): the span of the cited text that the question's focus
        asks for. A quoted answer opens with it ("un mes — 2. La reclamación se interpondrá…"); a generated one
        keeps its text (it was written for the question, and streamed). The trace says which focus, and why none."""
        if answer.abstained:
            return answer
        titled = answer.trace.details.get("document_title", {})
        if "title" in titled:  # "¿Qué ley…?": the document's title is the short answer (quoted first already)
            for n, citation in enumerate(answer.citations, start=1):
                span = span_in(citation.text, titled["title"]) if citation.chunk_id == titled["chunk_id"] else None
                if span is not None:
                    text = citation.text[span[0]:span[1]]
                    answer.trace.details["short_answer"] = {"focus": "document", "text": text, "citation": n}
                    return replace(answer, short_answer=text, short_start=span[0], short_end=span[1],
                                   short_citation=n)
        if "list" in answer.trace.details:  # the lead-in and its items are the answer: no one span is
            answer.trace.details["short_answer"] = {"focus": "list", "none": "the question asks for a list"}
            return answer
        focus = short_focus(question, language)
        found = short_answer(question, language, answer.citations, answer.text) if focus else None
        if found is None:
            why = ("the question asks for no amount, date, count, name, place, article or yes/no" if focus is None
                   else "no cited sentence restates the question" if focus == "yes/no"
                   else f"no {focus} in the cited text")
            answer.trace.details["short_answer"] = {"focus": focus, "none": why}
            return answer
        answer.trace.details["short_answer"] = {"focus": focus, "text": found.text, "citation": found.citation}
        quoted = answer.trace.details.get("answer_mode") == "extractive"
        return replace(answer, text=f"{found.text} — {answer.text}" if quoted else answer.text,
                       short_answer=found.text, short_start=found.start, short_end=found.end,
                       short_citation=found.citation)

    def page_of_quote(self, hit: ScoredChunk, quote: str) -> int | None:
        """The page of a sentence quoted from ``hit``'s sentence window instead of from the retrieved sentence
        itself: the neighbour may lie on the page before or after ("1. La Administración… no exceda de la mitad"
        on page 30, quoted from the window of page 31's sentence, was cited as page 31). Read from the chunk that
        holds the quoted sentence, among the document's chunks near the hit; the hit's page when none does."""
        meta = hit.chunk.metadata
        target = " ".join(quote.split())
        if meta.page is None or not meta.window or not target or target in " ".join(hit.chunk.text.split()):
            return meta.page
        try:
            ids = self.index.allowed({"$and": [{"source": meta.source},
                                               {"ordinal": {"$gte": meta.ordinal - _QUOTE_REACH}},
                                               {"ordinal": {"$lte": meta.ordinal + _QUOTE_REACH}}]})
            near = self.index.get(sorted(ids)).values()
        except Exception as exc:  # noqa: BLE001 - best effort: a store that cannot filter so keeps the hit's page
            log.debug("page of a quote not looked up: %s", exc)
            return meta.page
        best: tuple[int, int] | None = None  # (-shared characters, ordinal distance): the fullest match, then nearest
        page = meta.page
        for chunk in near:
            text = " ".join(chunk.text.split())
            if chunk.metadata.doc_id != meta.doc_id or not text or not (text in target or target in text):
                continue
            key = (-min(len(text), len(target)), abs(chunk.metadata.ordinal - meta.ordinal))
            if chunk.metadata.page is not None and (best is None or key < best):
                best, page = key, chunk.metadata.page
        return page

    @staticmethod
    def _abstain(language: str, trace: Trace, reason: str | None = None) -> Answer:
        if reason:
            trace.details["abstain_reason"] = reason
        return Answer(abstention(language), True, [], trace)


def _answerability_model(settings: Settings) -> tuple[AnswerabilityModel | None, str | None]:
    """The evidence gate's model, or None (rule score) with the reason when it was asked for and is unusable."""
    if settings.evidence_gate != "model":
        return None, None
    path = settings.answerability_model or ANSWERABILITY_PATH
    try:
        model = AnswerabilityModel.load(path)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return None, f"answerability model {path} unusable ({exc}); the evidence gate uses the rule score"
    dense = dense_model_id(settings.dense_model, settings.embedder_model)
    if not model.usable_with(dense):
        return None, (f"answerability model {path} was fit on the dense model {model.dense_model!r}, not "
                      f"{dense!r}; the evidence gate uses the rule score (min_evidence)")
    return model, None


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _note_ocr(citations: list[Citation], trace: Trace) -> None:
    """Say so when an answer rests on text read by OCR: a misread digit would change it."""
    read = [c for c in citations if c.ocr_engine]
    if not read:
        return
    trace.details["ocr_sources"] = [{"source": c.source, "page": c.page, "engine": c.ocr_engine,
                                     "confidence": c.ocr_confidence} for c in read]
    pages = ", ".join(f"{c.source} p.{c.page} ({c.ocr_engine}, confidence {c.ocr_confidence:.0f})" for c in read)
    trace.notes.append(f"the cited text was read by OCR from a scan: {pages}; check the page where it matters")
