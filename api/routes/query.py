"""Question answering and retrieval-only routes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from api.deps import ServicesDep, collection_for, require_ready
from api.limits import Budget, check_texts, share_models
from api.schemas import ChunksRequest, ChunksResponse, QueryFilters, QueryRequest, QueryResponse, QueryStreamRequest
from api.services import Services
from rag.settings import Settings
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


def check_query(settings: Settings, body: QueryRequest) -> None:
    """422 naming the field when the question, a history item or the history's length is over its limit."""
    check_texts(settings, [("question", body.question), *((f"history.{i}", q) for i, q in enumerate(body.history))],
                [("history", len(body.history), settings.max_history, "MAX_HISTORY")])


def check_context(services: Services, messages: list[dict[str, str]], max_tokens: int, field: str) -> None:
    """422 naming ``field`` when the messages and the answer cannot fit the local model's context (llama.cpp would
    fail the request); the sources are compressed into what is left. A remote server's context is its own."""
    settings = services.settings
    if settings.llm_base_url:
        return
    tokens = services.pipeline.count_prompt_tokens(messages)
    room = settings.llm_context - max_tokens - 64  # 64: the least the sources are compressed to
    if tokens > room:
        raise RequestValidationError([{
            "loc": ("body", *field.split(".")), "type": "too_long",
            "msg": f"the conversation is {tokens} tokens; with max_tokens {max_tokens} the model reads at most "
                   f"{room} (RAG_LLM_CONTEXT={settings.llm_context}): send fewer or shorter messages"}])


def uses_model(services: Services, options: QueryOptions) -> bool:
    """Whether answering may run the LLM: generation, LLM query expansion, or a follow-up rewritten by the
    model. Such requests queue at the model gate and hold the model for their whole run."""
    return services.pipeline.needs_model(options) or bool(options.history and services.settings.generates_in_auto)


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/v1/query", response_model=QueryResponse,
             responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "model busy or loading"}})
async def query(body: QueryStreamRequest, services: ServicesDep, request: Request):
    """Answer a question from the documents, with citations; ``stream: true`` sends server-sent events:
    ``token`` events as the model writes, then one ``answer`` event with the final answer, citations and
    trace (the final answer replaces the tokens when the grounding check rejects them)."""
    services = collection_for(request, services, body.collection, "read")
    check_query(services.settings, body)
    request.state.question = body.question
    options = query_options(services, body)
    # Answers that need no model (quotes) skip the gate; every request's work takes fair turns (api.limits).
    gated = uses_model(services, options)
    if gated and services.pipeline.effective_mode(options) != "extractive":
        check_context(services, [*options.history, {"role": "user", "content": body.question}],
                      options.sampling.max_tokens, "history")
    if gated:
        services.gate.enter()
    budget = Budget(request)
    if body.stream:
        def events() -> Iterator[str]:
            started = time.perf_counter()
            for event in budget.events(services.pipeline.stream(body.question, options)):
                if isinstance(event, Answer):
                    event.trace.timings_ms["total"] = (time.perf_counter() - started) * 1000
                    yield sse("answer", event.to_dict())
                else:
                    yield sse("token", {"text": event})

        return StreamingResponse(budget.stream(events(), model=gated, on_end=services.gate.leave if gated else None),
                                 media_type="text/event-stream")
    try:
        started = time.perf_counter()
        answer = await budget.run(lambda: budget.answer(services.pipeline, body.question, options), model=gated)
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
    check_texts(services.settings, [("text", body.text)])
    pipeline = services.pipeline
    budget = Budget(request)

    def run() -> list[dict]:
        # The answers' retrieval step, without re-ranking and expansion (a plain, fast ranking).
        options = QueryOptions(filters=to_filters(body.filters), rerank=False, expansion=())
        hits = pipeline.search(body.text, options, depth=body.limit).hits[:body.limit]
        return [_chunk_out(services, h.chunk, h.score, body.prev_next_chunks) for h in hits]

    share_models(pipeline, budget.queue)
    return {"object": "list", "data": await budget.run(run)}


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
