"""The API's own documentation (/openapi.json, /docs, /redoc), behind the API key like every other route.

FastAPI serves these without any check; with a key set they would describe the API to anyone who can reach
the port, so they are mounted here instead, with the key required unless ``RAG_OPEN_DOCS`` opens them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
def openapi(request: Request) -> JSONResponse:
    schema = request.app.openapi()
    root_path = request.scope.get("root_path", "")
    if root_path:  # behind a reverse proxy under a sub-path: clients must call through it
        schema = {**schema, "servers": [{"url": root_path}]}
    return JSONResponse(schema)


@router.get("/docs")
def swagger(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=request.scope.get("root_path", "") + "/openapi.json",
                               title=f"{request.app.title} - docs")


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=request.scope.get("root_path", "") + "/openapi.json",
                          title=f"{request.app.title} - ReDoc")
