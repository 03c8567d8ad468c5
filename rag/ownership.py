"""One owner process per index folder.

Chroma's embedded client is not process-safe, and neither are our BM25 file and manifest, so exactly one
process may hold an index folder at a time. The holder keeps an OS lock on ``owner.lock`` (``filelock``,
``flock`` underneath: the kernel drops it when the process dies, so a killed owner never leaves a stale
lock) and describes itself in ``owner.json`` (mode 0600, readable by the owning user only): its pid, its
command and, for ``rag serve``, its loopback URL and a random hand-over token that lets the CLI hand jobs
to the server instead of opening the index itself.

>>> with IndexOwnership(index_dir).hold("ingest"):
...     FolderIngestor(settings).run(folder)
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout


@dataclass(frozen=True)
class Owner:
    pid: int
    command: str  # "serve", "ingest", "import", ...
    started_at: float
    url: str | None = None  # a server's loopback URL
    token: str | None = None  # a server's hand-over token

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        where = f" at {self.url}" if self.url else ""
        return f"'rag {self.command}' (pid {self.pid}{where}, since {since})"


class IndexBusy(RuntimeError):
    """Another process owns the index folder."""

    def __init__(self, index_dir: Path, owner: Owner | None) -> None:
        self.owner = owner
        who = owner.describe() if owner else "another process"
        super().__init__(f"index {index_dir} is in use by {who}")


class IndexOwnership:
    """The lock and owner record of one index folder."""

    LOCK = "owner.lock"
    INFO = "owner.json"

    def __init__(self, index_dir: str | Path) -> None:
        self.index_dir = Path(index_dir)
        self._lock: FileLock | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None and self._lock.is_locked

    def acquire(self, command: str, url: str | None = None, wait_s: float = 0.0,
                on_wait: Callable[[Owner | None], None] | None = None) -> Owner:
        """Become the owner, waiting up to ``wait_s`` seconds (``on_wait`` is told who holds it, once);
        raises ``IndexBusy`` naming the holder when it is still held then."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.index_dir / self.LOCK, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if wait_s <= 0:
                raise IndexBusy(self.index_dir, self.owner()) from None
            if on_wait is not None:
                on_wait(self.owner())
            try:
                lock.acquire(timeout=wait_s)
            except Timeout:
                raise IndexBusy(self.index_dir, self.owner()) from None
        self._lock = lock
        me = Owner(os.getpid(), command, time.time(), url, secrets.token_urlsafe(32) if url else None)
        self._write(me)
        return me

    def release(self) -> None:
        if self._lock is not None:
            (self.index_dir / self.INFO).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    @contextmanager
    def hold(self, command: str, url: str | None = None, wait_s: float = 0.0,
             on_wait: Callable[[Owner | None], None] | None = None) -> Iterator[Owner]:
        owner = self.acquire(command, url, wait_s, on_wait)
        try:
            yield owner
        finally:
            self.release()

    def owner(self) -> Owner | None:
        """Who holds the index now; None when nobody does (a record left by a killed owner is ignored)."""
        if self.held:
            return self._read()
        probe = FileLock(self.index_dir / self.LOCK, thread_local=False)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return self._read()
        except FileNotFoundError:
            return None
        probe.release()
        return None

    def _write(self, owner: Owner) -> None:
        path = self.index_dir / self.INFO
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the token is the owner's alone
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(owner), fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def _read(self) -> Owner | None:
        try:
            return Owner(**json.loads((self.index_dir / self.INFO).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None  # being written, or unreadable by this user
