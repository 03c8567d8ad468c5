"""Dependencies shared by the routes: services, API key, readiness."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.services import Services
from rag.collections import DEFAULT_COLLECTION
from rag.keys import ALL_COLLECTIONS, Principal


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


OPEN = Principal("anyone", "admin", ALL_COLLECTIONS)  # no key configured at all: loopback-only by default
ENV_ADMIN = Principal("RAG_API_KEY", "admin", ALL_COLLECTIONS)


def require_api_key(request: Request) -> None:
    """Who is asking: ``Authorization: Bearer KEY`` (what OpenAI clients send) or ``X-API-Key: KEY``, checked
    against ``RAG_API_KEY`` (an admin key) and the scoped keys of ``rag keys``. With neither configured,
    anyone may ask (the server then listens on loopback only, unless told otherwise)."""
    services = request.app.state.services
    admin = services.index_settings.secret("api_key")
    store = services.keys
    if not admin and not store.any():
        request.state.principal = OPEN
        return
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    principal = None
    if given and admin and secrets.compare_digest(given.encode(), admin.encode()):
        principal = ENV_ADMIN
    elif given:
        principal = store.verify(given)
    if principal is None:
        raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal


def principal_of(request: Request) -> Principal:
    return getattr(request.state, "principal", OPEN)


def authorize(request: Request, collection: str | None, scope: str) -> None:
    """403, naming the collection and the scopes (never the key), when the key may not do this there."""
    principal = principal_of(request)
    name = collection or DEFAULT_COLLECTION
    if not principal.allows(name, scope):
        raise HTTPException(403, principal.denial(name, scope))


def collection_for(request: Request, services: Services, name: str | None, scope: str = "read") -> Services:
    """The services of collection ``name`` once the key is allowed ``scope`` there."""
    authorize(request, name, scope)
    request.state.collection = name or DEFAULT_COLLECTION  # for the audit log
    return services.collection(name)


def require_ready(request: Request) -> None:
    if not request.app.state.services.pipeline.ready:
        raise HTTPException(503, "models are still loading; retry in a few seconds", headers={"Retry-After": "5"})
