"""Document management: upload or post text, list, inspect, delete; large uploads as background jobs."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from api.deps import ServicesDep, collection_for, principal_of
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

router = APIRouter(tags=["documents"])
CollectionParam = Annotated[str | None, Query(max_length=63, description="The collection (default: the default one).")]


async def _ingest_now_or_later(services: Services, path: Path) -> JSONResponse:
    if path.stat().st_size > services.settings.background_ingest_mb * 1e6:
        job = services.jobs.submit(path.name, lambda: services.ingest(path))
        return JSONResponse(status_code=202, content={"job": job.to_dict(),
                                                      "status_url": f"/v1/ingest/jobs/{job.id}"})
    result = await asyncio.to_thread(services.ingest, path)
    if result["failed"]:
        path.unlink(missing_ok=True)  # nothing of a refused upload is kept
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
    if not any(principal_of(request).allows(c, "write") for c in services.collection_names()):
        raise HTTPException(403, "ingestion jobs need write access to a collection")
    try:
        return services.job(job_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


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
    """The original file of an indexed document, by its id (never by a path from the client), shown inline so
    that a browser opens a PDF in its own viewer (add ``#page=N`` to open it at a page)."""
    services = collection_for(request, services, collection, "read")
    found = next(((k, e) for k, e in services.ingestor.manifest.files.items() if e.doc_id == doc_id), None)
    if found is None:
        raise HTTPException(404, f"document {doc_id!r} not found; GET /v1/documents lists them")
    path = Path(found[0])
    if not path.is_file():
        raise HTTPException(404, f"{found[1].source} is indexed but no longer on disk")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, filename=path.name, content_disposition_type="inline")


@router.delete("/v1/documents/{doc_id}", response_model=DeletedDocument)
async def delete_document(doc_id: str, services: ServicesDep, request: Request,
                          collection: CollectionParam = None) -> dict:
    services = collection_for(request, services, collection, "write")
    deleted = await asyncio.to_thread(services.delete, doc_id)
    if deleted is None:
        raise HTTPException(404, f"document {doc_id!r} not found; GET /v1/documents lists them")
    return {"deleted": deleted}

