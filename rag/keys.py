"""Scoped API keys: each key reaches one collection (or all: ``*``) at one scope, stored hashed.

``read`` = questions, chunks, document lists; ``write`` = also ingest and delete there; ``admin`` = also
collections and keys. A key is 32 random bytes (URL-safe text), shown once when made; the index folder
keeps only its SHA-256 (a key has the entropy that makes a slow hash unnecessary), in ``keys.json``,
readable by its owner only. ``RAG_API_KEY`` stays valid as an admin key for every collection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.errors import InvalidRequest

SCOPES = ("read", "write", "admin")
ALL_COLLECTIONS = "*"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Principal:
    """Who a request's key says it is, and what it may do."""

    name: str
    scope: str
    collection: str

    def allows(self, collection: str, scope: str) -> bool:
        return (SCOPES.index(self.scope) >= SCOPES.index(scope)
                and self.collection in (ALL_COLLECTIONS, collection))

    def denial(self, collection: str, scope: str) -> str:
        """Why a request is refused, naming the collection and scopes but never the key."""
        return (f"key {self.name!r} has {self.scope} access to collection {self.collection!r}; this needs "
                f"{scope} access to collection {collection!r}")


@dataclass(frozen=True)
class StoredKey:
    name: str
    scope: str
    collection: str
    sha256: str
    created: float


class KeyStore:
    """The keys of one index folder (``keys.json``)."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / "keys.json"
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int] | None, dict[str, StoredKey]] = (None, {})

    def _load(self) -> dict[str, StoredKey]:
        """The stored keys, read again only when the file changed (every request checks a key; `rag keys`
        in another process changes the file, so a revoked key still stops at once)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a save replaces the file: a new inode
        if self._cached[0] != stamp:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._cached = (stamp, {k["name"]: StoredKey(**k) for k in data.get("keys", [])})
        return dict(self._cached[1])

    def _save(self, keys: dict[str, StoredKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"keys": [asdict(k) for k in sorted(keys.values(), key=lambda k: k.name)]}, fh, indent=1)
        os.replace(tmp, self.path)

    def add(self, name: str, scope: str, collection: str) -> str:
        """Make a key and return it (the only time it is ever shown)."""
        if not _NAME.match(name):
            raise InvalidRequest(f"key name must be 1-63 letters, digits, '.', '-' or '_', got {name!r}")
        if scope not in SCOPES:
            raise InvalidRequest(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        with self._lock:
            keys = self._load()
            if name in keys:
                raise InvalidRequest(f"a key named {name!r} exists; revoke it first")
            key = secrets.token_urlsafe(32)
            keys[name] = StoredKey(name, scope, collection, _digest(key), time.time())
            self._save(keys)
        return key

    def list(self) -> list[StoredKey]:
        with self._lock:
            return sorted(self._load().values(), key=lambda k: k.name)

    def revoke(self, name: str) -> bool:
        with self._lock:
            keys = self._load()
            if keys.pop(name, None) is None:
                return False
            self._save(keys)
            return True

    def verify(self, given: str) -> Principal | None:
        """The principal of a presented key, compared in constant time with every stored digest."""
        digest = _digest(given)
        found = None
        for key in self._load().values():
            if hmac.compare_digest(digest, key.sha256):
                found = key
        return Principal(found.name, found.scope, found.collection) if found else None

    def any(self) -> bool:
        return bool(self._load())


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
