"""The FastAPI application: ``create_app(settings)`` builds it; routes live in ``api/routes``."""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.deps import require_api_key
from api import security
from api.gate import ModelBusy, RequestTimeout
from api.limits import BodyLimit, TimeLimit, Workers
from api.routes import collections, docs, documents, handover, health, openai_compat, query, ui
from api.schemas import ERROR_RESPONSES
from api.services import Services
from ingest.errors import IndexWriteError
from rag.backend import BackendUnavailable
from rag.collections import UnknownCollection
from rag.errors import InvalidRequest
from rag.models import ModelNotFoundError
from rag.offline import ensure_offline
from rag.pipeline import QueryPipeline
from rag.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, pipeline: QueryPipeline | None = None,
               handover_token: str | None = None, watch: Path | None = None) -> FastAPI:
    """The API over one index. Pass ``pipeline`` to share already-loaded models (tests, embedding);
    ``handover_token``: the token ``rag serve`` wrote into the index folder (enables ``/v1/handover``);
    ``watch``: a folder kept in sync with the index while the server runs."""
    ensure_offline()
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Load the models in the background so the first question is not the slow one;
        # until they are loaded, model routes answer 503 with Retry-After.
        warming = asyncio.create_task(asyncio.to_thread(app.state.services.pipeline.warm_up))
        warming.add_done_callback(
            lambda t: None if t.cancelled() or t.exception() is None else log.error("warm-up failed: %s", t.exception()))
        stop_watching = None
        if watch is not None:
            from ingest.watch import start_watching

            services = app.state.services
            stop_watching = start_watching(watch, lambda folder: log.warning(
                "sync %s: %s", folder, services.ingest_folder(folder, confine=False)["summary"].replace("\n", "; ")))
        yield
        if stop_watching is not None:
            stop_watching.set()
        app.state.workers.cancel_all()  # work still running stops at its next step: SIGTERM ends the server
        app.state.services.jobs.shutdown()

    app = FastAPI(title="local-rag", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None,  # mounted by api/routes/docs.py, behind the key
                  description="Private question answering over your own documents; nothing leaves this machine.")
    app.state.services = Services.build(settings, pipeline or QueryPipeline.from_settings(settings))
    app.state.workers = Workers()
    # Innermost first: the time limit, the body limit, then Host, cross-site and headers (api/security.py);
    # the audit log and CORS outside them, so that refusals are logged and CORS answers preflights.
    app.add_middleware(TimeLimit, seconds=settings.request_timeout_s)
    app.add_middleware(BodyLimit, settings=settings)
    security.install(app, settings)
    if settings.audit_log is not None:
        from api.audit import AuditLog

        AuditLog(settings.audit_log, settings.audit_questions, settings.audit_max_mb).install(app)
    if settings.cors_origins:  # off unless origins are listed: a browser page elsewhere may not call us
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["authorization", "x-api-key", "content-type"])
    app.state.handover_token = handover_token

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in err["loc"][1:]) or "body", "message": err["msg"]}
                    for err in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": "invalid request", "errors": problems})

    @app.exception_handler(ModelBusy)
    async def model_busy(_: Request, exc: ModelBusy) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"{exc}; retry shortly"}, headers={"Retry-After": "2"})

    @app.exception_handler(RequestTimeout)
    async def timed_out(_: Request, exc: RequestTimeout) -> JSONResponse:
        return JSONResponse(status_code=504, content={"detail": str(exc)})

    @app.exception_handler(ModelNotFoundError)
    async def model_missing(_: Request, exc: ModelNotFoundError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(BackendUnavailable)
    async def index_unreachable(_: Request, exc: BackendUnavailable) -> JSONResponse:
        # The index's engine (a Milvus server) is away: the caller may retry, nothing is wrong with the request.
        log.warning("%s", exc)
        return JSONResponse(status_code=503, content={"detail": f"{exc}; retry shortly"}, headers={"Retry-After": "5"})

    @app.exception_handler(IndexWriteError)
    async def index_not_writable(_: Request, exc: IndexWriteError) -> JSONResponse:
        return JSONResponse(status_code=507, content={"detail": exc.strerror})

    @app.exception_handler(UnknownCollection)
    async def unknown_collection(_: Request, exc: UnknownCollection) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(InvalidRequest)
    async def invalid_request(_: Request, exc: InvalidRequest) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> JSONResponse:
        # Our fault, not the caller's: a 500 with an id to quote, the stack trace only in the log.
        request_id = uuid.uuid4().hex[:12]
        log.error("request %s %s %s failed", request_id, request.method, request.url.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return JSONResponse(status_code=500, content={"detail": "internal error; the server log has the details",
                                                      "request_id": request_id})

    app.include_router(health.router)
    app.include_router(ui.router)  # the page: public, it holds no data (the API behind it needs the key)
    app.include_router(handover.router)  # its own credential: the hand-over token, from loopback only
    app.include_router(docs.router, dependencies=[] if settings.open_docs else [Depends(require_api_key)])
    for router in (health.ready_router, query.router, openai_compat.router, documents.router, collections.router):
        app.include_router(router, dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES)
    return app
