"""The web page at ``/``: plain HTML, CSS and JavaScript shipped in the package (nothing from a CDN).

The page itself is public (it holds no data); everything it shows comes from the API, behind the key, which
the page asks for when the server answers 401 and keeps for the browser tab only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

UI = Path(__file__).resolve().parent.parent / "ui"
_ASSETS = {"app.js": "text/javascript", "style.css": "text/css", "icon.svg": "image/svg+xml"}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(UI / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/ui/{name}")
def asset(name: str) -> FileResponse:
    if name not in _ASSETS:  # a fixed list: never a path from the client
        raise HTTPException(404, f"no such file: {name}")
    return FileResponse(UI / name, media_type=_ASSETS[name], headers={"Cache-Control": "no-cache"})
