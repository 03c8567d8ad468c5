"""Collections: list, create, delete (each has its own documents, index and uploads)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ServicesDep, authorize, principal_of
from api.schemas import CollectionOut, CollectionRequest, CollectionsResponse, DeletedCollection

router = APIRouter(tags=["collections"])


@router.get("/v1/collections", response_model=CollectionsResponse)
def list_collections(services: ServicesDep, request: Request) -> dict:
    """The collections this key may read, with their document counts."""
    principal = principal_of(request)
    return {"object": "list", "data": [c for c in services.collections() if principal.allows(c["name"], "read")]}


@router.post("/v1/collections", response_model=CollectionOut, status_code=201,
             responses={200: {"description": "the collection already existed"}})
def create_collection(body: CollectionRequest, services: ServicesDep, request: Request) -> JSONResponse:
    authorize(request, body.name, "admin")
    created = services.create_collection(body.name)
    documents = len(services.collection(body.name).ingestor.manifest)
    return JSONResponse(status_code=201 if created else 200, content={"name": body.name, "documents": documents})


@router.delete("/v1/collections/{name}", response_model=DeletedCollection)
async def delete_collection(name: str, services: ServicesDep, request: Request) -> dict:
    """Delete a collection with its documents, index and uploads (the default one cannot be deleted)."""
    authorize(request, name, "admin")
    await asyncio.to_thread(services.delete_collection, name)
    return {"deleted": name}
