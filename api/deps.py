"""Dependencies shared by the routes: services, API key, readiness."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def require_api_key(request: Request) -> None:
    """``Authorization: Bearer KEY`` (what OpenAI clients send) or ``X-API-Key: KEY``, when a key is set."""
    expected = request.app.state.services.settings.api_key
    if not expected:
        return
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer <RAG_API_KEY>'",
                            headers={"WWW-Authenticate": "Bearer"})


def require_ready(request: Request) -> None:
    if not request.app.state.services.pipeline.ready:
        raise HTTPException(503, "models are still loading; retry in a few seconds", headers={"Retry-After": "5"})
