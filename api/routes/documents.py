"""Document management: upload or post text, list, inspect, delete; large uploads as background jobs."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from api.deps import ServicesDep, authorize, collection_for, principal_of
from api.schemas import (
    DeletedDocument,
    DocumentOut,
    DocumentsResponse,
    IngestResult,
    IngestTextRequest,
    JobAccepted,
    JobOut,
)
from api.services import Services
from api.uploads import UploadError, check_content, safe_name, store
from ingest.progress import IngestProgress

router = APIRouter(tags=["documents"])
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/tiff", "image/gif", "image/bmp",
                          "image/webp"})  # never image/svg+xml: an SVG runs script
FILE_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"
CollectionParam = Annotated[str | None, Query(max_length=63, description="The collection (default: the default one).")]


def _ingest_or_remove(services: Services, path: Path,
                      on_progress: Callable[[IngestProgress], None] | None = None) -> dict:
    """Ingest an upload; a refused or failed one leaves nothing on disk (a write key could fill it otherwise)."""
    try:
        result = services.ingest(path, on_progress)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if result["failed"]:
        path.unlink(missing_ok=True)
    return result


async def _ingest_now_or_later(services: Services, path: Path) -> JSONResponse:
    if path.stat().st_size > services.settings.background_ingest_mb * 1e6:
        job = services.jobs.submit_tracked(
            path.name, lambda job: _ingest_or_remove(services, path, job.follow), services.name)
        return JSONResponse(status_code=202, content={"job": job.to_dict(),
                                                      "status_url": f"/v1/ingest/jobs/{job.id}"})
    result = await asyncio.to_thread(_ingest_or_remove, services, path)
    if result["failed"]:
        failure = result["failed"][0]
        detail = f"{failure['source']}: {failure['reason']}" + (f" ({failure['detail']})" if failure["detail"] else "")
        raise HTTPException(422, detail)
    return JSONResponse(status_code=200, content=result)


@router.post("/v1/ingest/file", status_code=200, response_model=IngestResult,
             responses={202: {"model": JobAccepted, "description": "queued as a background job"}})
async def ingest_file(services: ServicesDep, request: Request, file: UploadFile = File(...),
                      collection: CollectionParam = None) -> JSONResponse:
    services = collection_for(request, services, collection, "write")
    limit = int(services.settings.max_upload_mb * 1e6)
    data = await file.read(limit + 1)
    try:
        name = safe_name(file.filename or "")
        check_content(name, data, limit)
        path = store(services.settings.uploads, name, data)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    return await _ingest_now_or_later(services, path)


@router.post("/v1/ingest/text", response_model=IngestResult,
             responses={202: {"model": JobAccepted, "description": "queued as a background job"}})
async def ingest_text(body: IngestTextRequest, services: ServicesDep, request: Request) -> JSONResponse:
    services = collection_for(request, services, body.collection, "write")
    try:
        name = safe_name(body.file_name)
        if Path(name).suffix.lower() not in {".txt", ".md"}:
            name = f"{name}.txt"
        data = body.text.encode("utf-8")
        check_content(name, data, int(services.settings.max_upload_mb * 1e6))
        path = store(services.settings.uploads, name, data)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    return await _ingest_now_or_later(services, path)


@router.get("/v1/ingest/jobs/{job_id}", response_model=JobOut)
def ingest_job(job_id: str, services: ServicesDep, request: Request) -> dict:
    """A job's state, for keys that may write to the job's collection; a job of a collection the key cannot
    read is not there for it (404)."""
    principal = principal_of(request)
    try:
        job = services.job(job_id, lambda collection: principal.allows(collection, "read"))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    authorize(request, job["collection"], "write")
    return job


@router.get("/v1/documents", response_model=DocumentsResponse)
def list_documents(services: ServicesDep, request: Request, collection: CollectionParam = None) -> dict:
    return {"object": "list", "data": collection_for(request, services, collection, "read").documents()}


@router.get("/v1/documents/{doc_id}", response_model=DocumentOut)
def get_document(doc_id: str, services: ServicesDep, request: Request, collection: CollectionParam = None) -> dict:
    services = collection_for(request, services, collection, "read")
    found = services.find(doc_id)
    if found is None:
        raise HTTPException(404, f"document {doc_id!r} not found; GET /v1/documents lists them")
    return services.document(found)


@router.get("/v1/documents/{doc_id}/file", response_class=FileResponse,
            responses={200: {"content": {"application/pdf": {}, "application/octet-stream": {}}}})
def document_file(doc_id: str, services: ServicesDep, request: Request, collection: CollectionParam = None):
    """The original file of an indexed document, by its id (never by a path from the client): a PDF or an image
    inline, so that a browser opens a PDF in its own viewer (add ``#page=N`` to open it at a page), any other
    type as a download; always sandboxed."""
    services = collection_for(request, services, collection, "read")
    found = next(((k, e) for k, e in services.ingestor.manifest.files.items() if e.doc_id == doc_id), None)
    if found is None:
        raise HTTPException(404, f"document {doc_id!r} not found; GET /v1/documents lists them")
    path = Path(found[0])
    if not path.is_file():
        raise HTTPException(404, f"{found[1].source} is indexed but no longer on disk")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Only what a browser shows without running anything opens inline; anything else (HTML above all: it would
    # run in this origin) downloads. Either way the browser may not sniff another type, and the document runs in
    # a sandbox: no script, no same-origin access.
    disposition = "inline" if media in INLINE_TYPES else "attachment"
    return FileResponse(path, media_type=media, filename=path.name, content_disposition_type=disposition,
                        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": FILE_CSP})


@router.delete("/v1/documents/{doc_id}", response_model=DeletedDocument)
async def delete_document(doc_id: str, services: ServicesDep, request: Request,
                          collection: CollectionParam = None) -> dict:
    services = collection_for(request, services, collection, "write")
    deleted = await asyncio.to_thread(services.delete, doc_id)
    if deleted is None:
        raise HTTPException(404, f"document {doc_id!r} not found; GET /v1/documents lists them")
    return {"deleted": deleted}

