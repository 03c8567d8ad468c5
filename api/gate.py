"""Bounded access to the one local model: one request generates, a few wait, the rest get 503."""

from __future__ import annotations

import threading


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
