"""Question answering and retrieval-only routes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from api.deps import ServicesDep, collection_for, require_ready
from api.schemas import ChunksRequest, ChunksResponse, QueryFilters, QueryRequest, QueryResponse, QueryStreamRequest
from api.services import Services
from rag.generator import SamplingParams
from rag.pipeline import QueryOptions
from rag.retriever import Filters
from rag.types import Answer

router = APIRouter(tags=["query"], dependencies=[Depends(require_ready)])


def to_filters(filters: QueryFilters | None) -> Filters | None:
    if filters is None:
        return None
    return Filters(tuple(filters.sources), tuple(filters.element_types), filters.page_min, filters.page_max)


def sampling(services: Services, **overrides: object) -> SamplingParams:
    base = SamplingParams.from_settings(services.settings)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def query_options(services: Services, body: QueryRequest) -> QueryOptions:
    return QueryOptions(top_k=body.top_k, filters=to_filters(body.filters), answer_mode=body.answer_mode,
                        history=tuple({"role": "user", "content": q} for q in body.history if q.strip()),
                        retrieval_mode=body.retrieval_mode, rerank=body.rerank,
                        expansion=None if body.query_expansion is None else tuple(body.query_expansion),
                        sampling=sampling(services, temperature=body.temperature, top_p=body.top_p,
                                          max_tokens=body.max_tokens, seed=body.seed,
                                          top_k=body.sampling_top_k, repeat_penalty=body.repeat_penalty))


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def guarded_stream(services: Services, events: Iterator[str], gated: bool = True) -> Iterator[str]:
    """Yield from ``events`` and give the model gate back when the stream ends (or the client leaves)."""
    try:
        yield from events
    finally:
        if gated:
            services.gate.leave()


@router.post("/v1/query", response_model=QueryResponse,
             responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "model busy or loading"}})
async def query(body: QueryStreamRequest, services: ServicesDep, request: Request):
    """Answer a question from the documents, with citations; ``stream: true`` sends server-sent events:
    ``token`` events as the model writes, then one ``answer`` event with the final answer, citations and
    trace (the final answer replaces the tokens when the grounding check rejects them)."""
    services = collection_for(request, services, body.collection, "read")
    request.state.question = body.question
    options = query_options(services, body)
    # Answers that need no model (quotes) skip the gate and run fully concurrently.
    gated = services.pipeline.needs_model(options)
    if gated:
        services.gate.enter()
    if body.stream:
        def events() -> Iterator[str]:
            started = time.perf_counter()
            for event in services.pipeline.stream(body.question, options):
                if isinstance(event, Answer):
                    event.trace.timings_ms["total"] = (time.perf_counter() - started) * 1000
                    yield sse("answer", event.to_dict())
                else:
                    yield sse("token", {"text": event})

        return StreamingResponse(guarded_stream(services, events(), gated), media_type="text/event-stream")
    try:
        started = time.perf_counter()
        answer = await asyncio.to_thread(services.pipeline.answer, body.question, options)
    finally:
        if gated:
            services.gate.leave()
    request.state.cited = sorted({c.chunk_id.split("-", 1)[0] for c in answer.citations})
    answer.trace.timings_ms["total"] = (time.perf_counter() - started) * 1000
    return answer.to_dict()


@router.post("/v1/chunks", response_model=ChunksResponse)
async def chunks(body: ChunksRequest, services: ServicesDep, request: Request) -> dict:
    """Retrieval only: the best chunks for a text, with their documents (no model involved)."""
    services = collection_for(request, services, body.collection, "read")
    pipeline = services.pipeline

    def run() -> list[dict]:
        # The answers' retrieval step, without re-ranking and expansion (a plain, fast ranking).
        options = QueryOptions(filters=to_filters(body.filters), rerank=False, expansion=())
        hits = pipeline.search(body.text, options, depth=body.limit).hits[:body.limit]
        return [_chunk_out(services, h.chunk, h.score, body.prev_next_chunks) for h in hits]

    return {"object": "list", "data": await asyncio.to_thread(run)}


def _chunk_out(services: Services, chunk, score: float, neighbours: int) -> dict:
    meta = chunk.metadata
    previous, following = [], []
    if neighbours:
        entry = services.find(meta.doc_id)
        ids = entry[1].chunk_ids if entry else []
        if chunk.id in ids:
            at = ids.index(chunk.id)
            around = services.pipeline.index.get(ids[max(0, at - neighbours):at + neighbours + 1])
            previous = [around[i].text for i in ids[max(0, at - neighbours):at] if i in around]
            following = [around[i].text for i in ids[at + 1:at + neighbours + 1] if i in around]
    return {"chunk_id": chunk.id, "text": chunk.text, "score": score, "source": meta.source, "page": meta.page,
            "element_type": str(meta.element_type), "document_id": meta.doc_id,
            "previous_texts": previous, "next_texts": following}
