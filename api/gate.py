"""Bounded access to the one local model (one request generates, a few wait, the rest get 503), fair turns on
the models for every request, and each request's time limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class ModelBusy(Exception):
    """Too many requests are already waiting for the model."""


class ModelGate:
    """Admits at most ``1 + max_waiting`` requests to the model path at once.

    The model itself is serialised by the generator's own lock; this gate only bounds how many
    requests queue behind it, so that a burst gets a quick 503 + Retry-After instead of piling up.
    """

    def __init__(self, max_waiting: int) -> None:
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be >= 0, got {max_waiting}")
        self._slots = threading.BoundedSemaphore(max_waiting + 1)
        self.capacity = max_waiting + 1
        self._in_use = 0
        self._count_lock = threading.Lock()
        # Shared by every collection, as the models are: the one generating request holds ``model`` for its
        # whole run; every request's slices of embedder work take turns in ``fair`` (api/limits.py).
        self.model = threading.Lock()
        self.fair = FairQueue()

    @property
    def in_use(self) -> int:
        """Requests holding a place now (generating or waiting for the model)."""
        return self._in_use

    def enter(self) -> None:
        """Take a place or raise ``ModelBusy``; pair with ``leave()`` (streams leave when they end)."""
        if not self._slots.acquire(blocking=False):
            raise ModelBusy(f"the model is busy ({self.capacity} requests in progress or waiting)")
        with self._count_lock:
            self._in_use += 1

    def leave(self) -> None:
        with self._count_lock:
            self._in_use -= 1
        self._slots.release()


class RequestTimeout(Exception):
    """A request ran past its time limit (``RAG_REQUEST_TIMEOUT_S``); its work stops at the next step."""


class Deadline:
    """One request's time limit, checked by its work between steps (a thread cannot be stopped from outside).

    >>> Deadline(120).check()  # raises RequestTimeout once 120 s have passed or ``cancel()`` was called
    """

    def __init__(self, seconds: float, what: str = "request") -> None:
        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        self.seconds = seconds
        self.what = what
        self.started = time.monotonic()
        self.at = self.started + seconds
        self.cancelled = threading.Event()

    def left(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.cancelled.is_set() or self.left() <= 0

    def cancel(self) -> None:
        self.cancelled.set()

    def message(self) -> str:
        return (f"the request ran past its time limit of {self.seconds:g} s and was stopped "
                "(RAG_REQUEST_TIMEOUT_S); ask something shorter or retry later")

    def check(self) -> None:
        if self.expired():
            raise RequestTimeout(self.message())


class FairQueue:
    """Turns on the shared models (every embedder call of a request, in slices of a few texts), one at a time,
    shared fairly by time: the waiting turn whose client has used the least time goes first (start-time fair
    queueing: a turn's tag is its client's last finish tag, or the queue's virtual time if the client was idle;
    the finish tag adds the turn's measured duration). A client that sends the largest requests runs ahead of
    the others' tags and waits for their turns between its own slices; an ordinary question waits at most for
    the slice in progress (issue 45: one chat message held every answer for minutes).

    >>> with queue.turn("key:alice", deadline): vectors = embedder.embed(batch)
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._vtime = 0.0
        self._finish: dict[str, float] = {}  # client -> finish tag of its last turn
        self._waiting: list[tuple[float, int, str]] = []  # (start tag, arrival, client)
        self._arrivals = 0

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    @contextmanager
    def turn(self, client: str, deadline: Deadline | None = None) -> Iterator[None]:
        with self._cond:
            self._arrivals += 1
            ticket = (max(self._finish.get(client, 0.0), self._vtime), self._arrivals, client)
            self._waiting.append(ticket)
            try:
                while self._busy or min(self._waiting) is not ticket:
                    if deadline is not None:
                        deadline.check()
                    self._cond.wait(timeout=0.25 if deadline is None else max(0.01, min(0.25, deadline.left())))
            except BaseException:
                self._waiting.remove(ticket)
                self._cond.notify_all()
                raise
            self._waiting.remove(ticket)
            self._busy = True
            self._vtime = ticket[0]
        started = time.monotonic()
        try:
            yield
        finally:
            with self._cond:
                self._finish[client] = ticket[0] + (time.monotonic() - started)
                if len(self._finish) > 10_000:  # clients long gone: their tags are behind the virtual time
                    self._finish = {c: f for c, f in self._finish.items() if f > self._vtime}
                self._busy = False
                self._cond.notify_all()
