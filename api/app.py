"""The FastAPI application: ``create_app(settings)`` builds it; routes stay thin."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import Health, QueryRequest, QueryResponse
from rag.generator import SamplingParams
from rag.offline import ensure_offline
from rag.pipeline import QueryOptions, QueryPipeline
from rag.retriever import Filters
from rag.settings import Settings


log = logging.getLogger(__name__)


def get_pipeline(request: Request) -> QueryPipeline:
    return request.app.state.pipeline


def create_app(settings: Settings | None = None, pipeline: QueryPipeline | None = None) -> FastAPI:
    """The API over one index. Pass ``pipeline`` to share already-loaded models (tests, embedding)."""
    ensure_offline()
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Load the models in the background so the first question is not the slow one.
        warming = asyncio.create_task(asyncio.to_thread(app.state.pipeline.warm_up))
        warming.add_done_callback(
            lambda t: None if t.cancelled() or t.exception() is None else log.error("warm-up failed: %s", t.exception()))
        yield

    app = FastAPI(title="local-rag", version="0.1.0", lifespan=lifespan,
                  description="Private question answering over your own documents; nothing leaves this machine.")
    app.state.settings = settings
    app.state.pipeline = pipeline or QueryPipeline.from_settings(settings)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in err["loc"][1:]) or "body", "message": err["msg"]}
                    for err in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": "invalid request", "errors": problems})

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health()

    @app.post("/v1/query", response_model=QueryResponse)
    async def query(body: QueryRequest, pipeline: Annotated[QueryPipeline, Depends(get_pipeline)]) -> dict:
        if not body.question.strip():
            raise HTTPException(422, "question must not be empty")
        base = SamplingParams.from_settings(pipeline.settings)
        sampling = replace(base, **{k: v for k, v in {"temperature": body.temperature, "top_p": body.top_p,
                                                        "max_tokens": body.max_tokens, "seed": body.seed}.items()
                                    if v is not None})
        filters = None
        if body.filters is not None:
            f = body.filters
            filters = Filters(tuple(f.sources), tuple(f.element_types), f.page_min, f.page_max)
        options = QueryOptions(top_k=body.top_k, filters=filters, answer_mode=body.answer_mode,
                               retrieval_mode=body.retrieval_mode, sampling=sampling)
        started = time.perf_counter()
        # The pipeline is blocking (models, disk); run it off the event loop.
        answer = await asyncio.to_thread(pipeline.answer, body.question, options)
        answer.trace.timings_ms["total"] = (time.perf_counter() - started) * 1000
        return answer.to_dict()

    return app
