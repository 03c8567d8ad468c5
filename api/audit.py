"""The audit log (off by default): one JSON line per request — time, key name, collection, route, the
question's SHA-256 (or its text, by setting), the documents cited, the status — in a file rotated by size."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from fastapi import FastAPI, Request


class AuditLog:
    """Writes the lines; ``questions``: "hash" (default: who asked what can be matched, not read) or "text"."""

    def __init__(self, path: Path, questions: str = "hash", max_mb: float = 10.0, backups: int = 5) -> None:
        if questions not in ("hash", "text"):
            raise ValueError(f"questions must be 'hash' or 'text', got {questions!r}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.questions = questions
        self._logger = logging.getLogger(f"rag.audit.{Path(path).resolve()}")
        self._logger.propagate = False  # audit lines go to their file only, never to the console log
        self._logger.setLevel(logging.INFO)
        if not self._logger.handlers:
            handler = RotatingFileHandler(path, maxBytes=int(max_mb * 1024 * 1024), backupCount=backups,
                                          encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def write(self, request: Request, status: int, seconds: float) -> None:
        state = request.state
        principal = getattr(state, "principal", None)
        question = getattr(state, "question", None)
        line = {"time": round(time.time(), 3), "key": principal.name if principal else None,
                "collection": getattr(state, "collection", None), "method": request.method,
                "route": request.url.path, "status": status, "ms": round(seconds * 1000, 1),
                "cited": getattr(state, "cited", None)}
        if question is not None:
            line["question" if self.questions == "text" else "question_sha256"] = (
                question if self.questions == "text" else hashlib.sha256(question.encode("utf-8")).hexdigest())
        self._logger.info(json.dumps(line, ensure_ascii=False))

    def install(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def audit(request: Request, call_next):
            started = time.perf_counter()
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                if request.url.path != "/health":
                    self.write(request, status, time.perf_counter() - started)
