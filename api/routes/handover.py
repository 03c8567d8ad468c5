"""Jobs handed over by the CLI while this server owns the index (``rag ingest``, ``rag ask``).

The server then reads a folder by the path the CLI names, so these routes accept only the hand-over token
that ``rag serve`` wrote into the index folder (readable by the owning user only), and only from a loopback
client: never an API key alone, never a remote client.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.routes import documents
from api.limits import Budget
from api.routes.query import query_options, uses_model
from api.schemas import HandoverPathRequest, QueryRequest
from rag.types import Answer

HEADER = "X-Handover-Token"


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_handover(request: Request) -> None:
    if not _loopback(request.client.host if request.client else None):
        raise HTTPException(403, "hand-over routes answer loopback clients only")
    expected = getattr(request.app.state, "handover_token", None)
    given = request.headers.get(HEADER, "")
    if not expected or not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, f"missing or wrong {HEADER}: only the 'rag' command on this machine, reading "
                                 "the token from the index folder, may hand jobs over")


router = APIRouter(prefix="/v1/handover", tags=["hand-over"], dependencies=[Depends(require_handover)],
                   include_in_schema=False)


@router.post("/ingest", status_code=202)
def ingest(body: HandoverPathRequest, services: ServicesDep) -> JSONResponse:
    path = Path(body.path)
    if not path.is_absolute():
        raise HTTPException(422, f"path must be absolute, got {body.path!r}")
    if not path.exists():
        raise HTTPException(404, f"no such file or folder: {body.path}")
    if body.collection:
        services.create_collection(body.collection)  # `rag ingest --collection NEW` makes it, as without a server
    services = services.collection(body.collection)

    job = services.jobs.submit_tracked(str(path), lambda job: services.ingest_folder(path, job.follow),
                                       services.name)
    return JSONResponse(status_code=202, content={"job": job.to_dict(), "status_url": f"/v1/handover/jobs/{job.id}"})


# The same job status as /v1/ingest/jobs, under the hand-over credential.
router.get("/jobs/{job_id}")(documents.ingest_job)


@router.post("/query")
async def query(body: QueryRequest, services: ServicesDep, request: Request) -> dict:
    """``rag ask`` while the server owns the index: answered here, so that no second process opens it."""
    services = services.collection(body.collection)
    if not services.pipeline.ready:
        raise HTTPException(503, "models are still loading; retry in a few seconds", headers={"Retry-After": "5"})
    options = query_options(services, body)
    budget = Budget(request, "rag ask (hand-over)")
    gated = uses_model(services, options)
    started = time.perf_counter()
    answer: Answer = await budget.run(lambda: budget.answer(services.pipeline, body.question, options), model=gated)
    answer.trace.timings_ms["total"] = (time.perf_counter() - started) * 1000
    return answer.to_dict()


@router.post("/export")
def export(body: HandoverPathRequest, services: ServicesDep) -> dict:
    """A consistent snapshot while serving: written between ingestions (queries go on meanwhile)."""
    from rag.snapshot import SnapshotError, export_snapshot, fingerprint

    target = Path(body.path)
    if not target.is_absolute() or not target.parent.is_dir():
        raise HTTPException(422, f"path must be absolute, in an existing folder: {body.path!r}")
    settings = services.settings
    with services.ingest_lock:
        try:
            info = export_snapshot(services.pipeline.index, Path(settings.index_dir),
                                   fingerprint(settings, services.pipeline.dense.model_id), target)
        except SnapshotError as exc:
            raise HTTPException(422, str(exc)) from exc
    return {"summary": info.summary(), "chunks": info.chunks, "documents": info.documents}
