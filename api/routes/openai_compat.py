"""OpenAI-compatible routes, so the official ``openai`` client works against this server.

``POST /v1/chat/completions`` answers the last user message over the documents (earlier turns and
system messages are passed on) and puts the citations in ``choices[i].sources``, as PrivateGPT does;
``use_context: false`` is a plain chat with the local model.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from api.deps import ServicesDep, collection_for, principal_of, require_ready
from api.limits import SLICE, Budget, FairEmbedder, check_texts
from api.routes.query import check_context, sampling, to_filters, uses_model
from api.schemas import ChatCompletion, ChatRequest, EmbeddingsRequest, EmbeddingsResponse, ModelsResponse
from api.services import Services
from rag.generator import Message
from rag.pipeline import QueryOptions
from rag.types import Answer

router = APIRouter(tags=["openai"], dependencies=[Depends(require_ready)])


@router.get("/v1/models", response_model=ModelsResponse)
def models(services: ServicesDep, request: Request) -> dict:
    """The local model, then each collection this key may read (a chat completion whose ``model`` names one
    searches it)."""
    principal = principal_of(request)
    return {"object": "list", "data": [
        {"id": services.pipeline.generator.model_id, "object": "model", "created": 0, "owned_by": "local"},
        *({"id": c["name"], "object": "model", "created": 0, "owned_by": "collection"}
          for c in services.collections() if principal.allows(c["name"], "read"))]}


def _collection_of(request: Request, services: Services, model: str | None) -> Services:
    """The collection a chat request's ``model`` names; the default one for any other model name."""
    named = model if model and model in services.collection_names() else None
    return collection_for(request, services, named, "read")


@router.post("/v1/embeddings", response_model=EmbeddingsResponse)
async def embeddings(body: EmbeddingsRequest, services: ServicesDep, request: Request) -> dict:
    texts = [body.input] if isinstance(body.input, str) else body.input
    settings = services.settings
    if not texts or any(not t for t in texts):
        raise HTTPException(422, f"input must be a non-empty string or a list of 1 to {settings.max_embedding_inputs}"
                                 " non-empty strings")
    fields = [("input", texts[0])] if isinstance(body.input, str) else [(f"input.{i}", t) for i, t in enumerate(texts)]
    check_texts(settings, fields, [("input", len(texts), settings.max_embedding_inputs, "MAX_EMBEDDING_INPUTS")])
    budget = Budget(request)
    # In slices, each in its turn: the largest request waits for other clients' turns between its slices.
    embedder = FairEmbedder(services.pipeline.embedder, budget.queue, SLICE)
    count = getattr(embedder, "count_tokens", None)

    def work() -> tuple[list, int]:
        return list(embedder.embed(texts)), sum(count(texts)) if count else 0

    vectors, tokens = await budget.run(work)
    return {"object": "list", "model": embedder.model_id,
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _check_chat(services: Services, body: ChatRequest) -> None:
    settings = services.settings
    check_texts(settings, [(f"messages.{i}.content", m.content) for i, m in enumerate(body.messages)],
                [("messages", len(body.messages), settings.max_messages, "MAX_MESSAGES")])


def _split_messages(body: ChatRequest) -> tuple[str, list[Message]]:
    """The question (last user message) and the earlier turns, system messages included."""
    messages = [m.model_dump() for m in body.messages]
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None or not messages[last_user]["content"].strip():
        raise HTTPException(422, "messages must contain a non-empty user message")
    return messages[last_user]["content"], messages[:last_user]


def _sources(answer: Answer) -> list[dict]:
    return [asdict(c) for c in answer.citations]


def _usage(services: Services, prompt_tokens: object, content: str) -> dict:
    """Tokens counted with the model's tokenizer: the prompt it read (0 when the answer was quoted
    without the model) and the text returned."""
    prompt = prompt_tokens if isinstance(prompt_tokens, int) else 0
    completion = services.pipeline.compressor.count_tokens(content) if content else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _completion(model: str, content: str, sources: list[dict] | None, trace: dict | None, usage: dict) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if sources is not None:
        choice["sources"] = sources
    body = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [choice], "usage": usage}
    if trace is not None:
        body["trace"] = trace
    return body


def _chunk(completion_id: str, model: str, delta: dict, finish: str | None = None,
           sources: list[dict] | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    if sources is not None:
        choice["sources"] = sources
    payload = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
               "model": model, "choices": [choice]}
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


@router.post("/v1/chat/completions", response_model=ChatCompletion, response_model_exclude_unset=True,
             responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "model busy or loading"}})
async def chat_completions(body: ChatRequest, services: ServicesDep, request: Request):
    services = _collection_of(request, services, body.model)
    _check_chat(services, body)
    question, history = _split_messages(body)
    request.state.question = question
    params = sampling(services, temperature=body.temperature, top_p=body.top_p, max_tokens=body.max_tokens,
                      seed=body.seed, top_k=body.top_k, repeat_penalty=body.repeat_penalty)
    model = services.pipeline.generator.model_id
    options = QueryOptions(filters=to_filters(body.context_filter), answer_mode=body.answer_mode,
                           sampling=params, history=tuple(history))
    gated = not body.use_context or uses_model(services, options)  # quotes need no model
    if not body.use_context or (gated and services.pipeline.effective_mode(options) != "extractive"):
        check_context(services, [*history, {"role": "user", "content": question}], params.max_tokens, "messages")
    if gated:
        services.gate.enter()
    budget = Budget(request)
    if body.stream:
        return StreamingResponse(budget.stream(_stream(services, budget, body, question, history, params), model=gated,
                                               on_end=services.gate.leave if gated else None),
                                 media_type="text/event-stream")
    try:
        if not body.use_context:
            messages = history + [{"role": "user", "content": question}]
            text = await budget.run(lambda: "".join(budget.events(services.pipeline.chat(messages, params))),
                                    model=True)
            prompt = services.pipeline.count_prompt_tokens(messages)
            return _completion(model, text.strip(), None, None, _usage(services, prompt, text.strip()))
        answer = await budget.run(lambda: budget.answer(services.pipeline, question, options), model=gated)
    finally:
        if gated:
            services.gate.leave()
    usage = _usage(services, answer.trace.details.get("prompt_tokens"), answer.text)
    return _completion(model, answer.text, _sources(answer) if body.include_sources else None,
                       answer.trace.to_dict(), usage)


def _stream(services: Services, budget: Budget, body: ChatRequest, question: str, history: list[Message],
            params) -> Iterator[str]:
    """Server-sent chunks. With documents, the text is sent once the grounding check has passed it
    (``generative`` mode streams tokens as they come, unchecked); sources ride on the last chunk."""
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    model = services.pipeline.generator.model_id
    yield _chunk(completion_id, model, {"role": "assistant"})
    if not body.use_context:
        for piece in budget.events(services.pipeline.chat(history + [{"role": "user", "content": question}], params)):
            yield _chunk(completion_id, model, {"content": piece})
        yield _chunk(completion_id, model, {}, "stop")
    else:
        options = QueryOptions(filters=to_filters(body.context_filter), answer_mode=body.answer_mode,
                               sampling=params, history=tuple(history))
        live = services.pipeline.effective_mode(options) == "generative"
        for event in budget.events(services.pipeline.stream(question, options)):
            if isinstance(event, Answer):
                if not live:
                    for start in range(0, len(event.text), 16):
                        yield _chunk(completion_id, model, {"content": event.text[start:start + 16]})
                yield _chunk(completion_id, model, {}, "stop", _sources(event) if body.include_sources else None)
            elif live:
                yield _chunk(completion_id, model, {"content": event})
    yield "data: [DONE]\n\n"
