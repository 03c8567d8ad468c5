"""Bounded work per request: text and count limits, body size, a time limit, and fair turns on the models.

Every limit is a setting (``RAG_MAX_TEXT_CHARS``, ``RAG_MAX_MESSAGES``, ``RAG_MAX_HISTORY``,
``RAG_MAX_EMBEDDING_INPUTS``, ``RAG_MAX_BODY_MB``, ``RAG_REQUEST_TIMEOUT_S``) and every refusal names the field
and the setting that raises it: 422 for a text or a list over its limit, 413 for a body, 504 for time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError

import numpy as np

from api.gate import Deadline, FairQueue, RequestTimeout
from rag.embedder import embed_queries
from rag.settings import Settings
from rag.types import Answer

T = TypeVar("T")
DEADLINE = "rag.deadline"  # the ASGI scope key of a request's Deadline
# Texts embedded per turn: about 0.1 s of the judge embedder for texts of 256 word pieces on 2 cores, so a
# question waits at most that long behind the largest request (whole calls took 45 s: a 4,000-character
# question decomposed into 71 parts; 50 s: 256 embeddings inputs).
SLICE = 2


# --- texts and counts ----------------------------------------------------------------------------
def check_texts(settings: Settings, texts: Iterable[tuple[str, str]],
                counts: Iterable[tuple[str, int, int, str]] = ()) -> None:
    """422 naming each field over its limit: ``texts`` are (field, text), ``counts`` (field, count, most, setting).
    The same character limit holds for every text a client sends to the models."""
    most = settings.max_text_chars
    problems = [{"loc": ("body", *field.split(".")), "type": "too_long",
                 "msg": f"Value should have at most {limit} items (RAG_{setting}), got {count}"}
                for field, count, limit, setting in counts if count > limit]
    problems += [{"loc": ("body", *field.split(".")), "type": "string_too_long",
                  "msg": f"String should have at most {most} characters (RAG_MAX_TEXT_CHARS), got {len(text)}"}
                 for field, text in texts if len(text) > most]
    if problems:
        raise RequestValidationError(problems)


# --- the time limit --------------------------------------------------------------------------------
def deadline_of(request: Request) -> Deadline:
    """The request's Deadline, set by ``TimeLimit`` (a fresh one where the middleware is not installed)."""
    deadline = request.scope.get(DEADLINE)
    if deadline is None:
        deadline = request.scope[DEADLINE] = Deadline(request.app.state.services.settings.request_timeout_s)
    return deadline


async def _send_json(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class TimeLimit:
    """ASGI middleware: a request still running after ``seconds`` is answered 504 (a stream is cut) and its
    Deadline is cancelled, so that its work in a worker thread stops at its next step."""

    def __init__(self, app, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = scope[DEADLINE] = Deadline(self.seconds)
        started = False

        async def sending(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, sending), timeout=self.seconds)
        except (asyncio.TimeoutError, RequestTimeout):
            if not started:
                await _send_json(send, 504, deadline.message())
        finally:
            deadline.cancel()  # a finished (or abandoned) request's work has no reason to go on


# --- body size ---------------------------------------------------------------------------------------
class BodyLimit:
    """ASGI middleware: 413 for a body over the limit, by its Content-Length before reading it, and by the
    bytes received for a chunked body. Uploads have their own (larger) limit."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.default = int(settings.max_body_mb * 1e6)
        upload = int(settings.max_upload_mb * 1e6)
        # Multipart framing around the file; JSON escapes may double a text's bytes.
        self.uploads = {"/v1/ingest/file": (upload + 1_000_000, "RAG_MAX_UPLOAD_MB"),
                        "/v1/ingest/text": (2 * upload + 1_000_000, "RAG_MAX_UPLOAD_MB")}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        limit, setting = self.uploads.get(path, (self.default, "RAG_MAX_BODY_MB"))
        message = (f"the request body is over the limit of {limit / 1e6:g} MB for {path} ({setting}); "
                   "send less, or raise the setting")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_json(send, 400, "Content-Length is not a number")
                return
            if declared > limit:
                await _send_json(send, 413, message, {"connection": "close"})
                return
        received = 0

        async def limited():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    # Raised inside the route's body parsing: FastAPI passes an HTTPException on as it is.
                    raise HTTPException(413, message, headers={"connection": "close"})
            return event

        await self.app(scope, limited, send)


# --- work in worker threads ---------------------------------------------------------------------------
class Workers:
    """What requests' work is running in worker threads now, and since when: ``/ready`` reports work still
    running past its time limit (it could not be stopped at a step), and shutdown cancels it all."""

    def __init__(self, grace_s: float = 5.0) -> None:
        self.grace_s = grace_s
        self._running: dict[int, tuple[str, Deadline]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def running(self, what: str, deadline: Deadline) -> Iterator[None]:
        key = id(object())
        with self._lock:
            self._running[key] = (what, deadline)
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(key, None)

    def stuck(self) -> list[str]:
        """Work past its deadline by more than ``grace_s``: one step that runs far longer than it should."""
        now = time.monotonic()
        with self._lock:
            items = list(self._running.values())
        return [f"{what} has run {now - d.started:.0f} s, past its limit of {d.seconds:g} s"
                for what, d in items if now > d.at + self.grace_s]

    def cancel_all(self) -> None:
        with self._lock:
            items = list(self._running.values())
        for _, deadline in items:
            deadline.cancel()


_current = threading.local()  # the Budget of the request whose work runs in this thread


def current_budget() -> Budget | None:
    return getattr(_current, "budget", None)


class FairEmbedder:
    """An embedder whose calls, made for a request (``Budget``), run in slices of ``slice_size`` texts, each in
    its turn of the fair queue, after checking the request's deadline. Calls outside a request (ingestion,
    warm-up) go straight through. Everything else is the wrapped embedder's."""

    def __init__(self, inner, queue: FairQueue, slice_size: int) -> None:
        if slice_size < 1:
            raise ValueError(f"slice_size must be > 0, got {slice_size}")
        self.inner = inner
        self.queue = queue
        self.slice_size = slice_size

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._sliced(self.inner.embed, texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._sliced(lambda part: embed_queries(self.inner, part), texts)

    def _sliced(self, embed: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
        budget = current_budget()
        if budget is None or not texts:
            return embed(texts)
        parts = []
        for start in range(0, len(texts), self.slice_size):
            with budget.turn():
                parts.append(embed(texts[start:start + self.slice_size]))
        return np.concatenate(parts)


def share_models(pipeline, queue: FairQueue) -> None:
    """Route a pipeline's query-time embedders (the judge's and the dense index's, behind their caches) through
    the fair queue; idempotent (a collection's pipeline is built on first use, so it is called per request)."""
    for cached in (pipeline._query_embedder, pipeline._dense_cached):
        if not isinstance(cached.inner, FairEmbedder):
            cached.inner = FairEmbedder(cached.inner, queue, SLICE)


class Budget:
    """One request's share of the models: its deadline, its client's place in the fair queue, its model slot.

    Work runs in a worker thread (``run``) or a response stream (``stream``, ``events``) as this request's: each
    embedder call it makes is cut in slices that take turns (``FairEmbedder``), the deadline is checked at every
    slice and every pipeline step, and a request that needs the LLM holds the model for its whole run."""

    def __init__(self, request: Request, what: str = "") -> None:
        gate = request.app.state.services.gate  # shared by every collection, as the models are
        self.deadline = deadline_of(request)
        self.queue: FairQueue = gate.fair
        self.workers: Workers = request.app.state.workers
        self.model_lock: threading.Lock = gate.model
        principal = getattr(request.state, "principal", None)
        host = request.client.host if request.client else "?"
        # Keyed clients share by key; without keys, by address.
        self.client = f"key:{principal.name}" if principal is not None and principal.name != "anyone" else host
        self.what = what or f"{request.method} {request.url.path}"

    async def run(self, work: Callable[[], T], model: bool = False) -> T:
        """``work()`` in a worker thread, registered for ``/ready``; ``model``: hold the LLM meanwhile."""
        def registered() -> T:
            with self.workers.running(self.what, self.deadline), self.current():
                if not model:
                    return work()
                with self.model():
                    return work()
        return await asyncio.to_thread(registered)

    @contextmanager
    def model(self) -> Iterator[None]:
        while not self.model_lock.acquire(timeout=0.1):
            self.deadline.check()
        try:
            yield
        finally:
            self.model_lock.release()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """One slice of model work, in its turn (the deadline checked first)."""
        with self.queue.turn(self.client, self.deadline):
            self.deadline.check()
            yield

    @contextmanager
    def current(self) -> Iterator[None]:
        """Model calls made by this thread meanwhile are this request's (``FairEmbedder``)."""
        previous = current_budget()
        _current.budget = self
        try:
            yield
        finally:
            _current.budget = previous

    def events(self, events: Iterator[T]) -> Iterator[T]:
        """``events`` pulled one at a time as this request's work, the deadline checked between them; closed
        (the model's lock released) when the deadline passes or the caller stops."""
        try:
            while True:
                self.deadline.check()
                with self.current():
                    try:
                        event = next(events)
                    except StopIteration:
                        return
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def answer(self, pipeline, question: str, options) -> Answer:
        """``pipeline.stream`` run to its final answer, the deadline checked at every step and model call."""
        share_models(pipeline, self.queue)
        for event in self.events(pipeline.stream(question, options)):
            if isinstance(event, Answer):
                return event
        raise RuntimeError("pipeline produced no answer")

    def stream(self, events: Iterator[T], model: bool = False, on_end: Callable[[], None] | None = None
               ) -> Iterator[T]:
        """A response stream (iterated by the server's thread pool) made of ``events`` (which take their turns
        through ``self.events``), holding the model when ``model``; ``on_end`` runs however it ends (the
        client left, the deadline passed)."""
        try:
            with self.workers.running(self.what, self.deadline):
                if model:
                    with self.model():
                        yield from events
                else:
                    yield from events
        except RequestTimeout:
            return  # the stream is cut; the middleware has cancelled the request
        finally:
            if on_end is not None:
                on_end()
