"""The ingestion manifest: which file version, parsed and chunked how, owns which chunk ids."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

# The key of an entry rebuilt from chunks that do not carry their file's path (made before they did):
# "unknown:<doc_id>"; the next ingest of that file takes the entry over.
UNKNOWN_PREFIX = "unknown:"


@dataclass
class FileEntry:
    source: str
    doc_id: str
    content_hash: str
    config_key: str
    chunk_ids: list[str] = field(default_factory=list)
    pages: int = 0
    mtime: float = 0.0
    ingested_at: float = 0.0


class Manifest:
    """Keyed by absolute file path; saved atomically so a killed run leaves the previous version.

    Thread-safe: a server answers listings while a background job ingests, so every read and write holds
    one lock, and readers get copies that later changes cannot touch.
    """

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._files: dict[str, FileEntry] = {}
        # Why the file on disk could not be read (truncated, not JSON): the index's chunks then rebuild the
        # entries (``ingest.repair``) rather than being taken for leftovers. None: read, or no file yet.
        self.unreadable: str | None = None
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                version = data.get("version")
                files = {key: FileEntry(**entry) for key, entry in data["files"].items()}
            except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
                self.unreadable = f"{type(exc).__name__}: {exc}"
                return
            if version != self.VERSION:
                raise ValueError(f"{path}: unsupported manifest version {version!r}")
            self._files = files

    @property
    def files(self) -> dict[str, FileEntry]:
        """A copy of every entry by key."""
        with self._lock:
            return {key: _copy(entry) for key, entry in self._files.items()}

    def get(self, key: str) -> FileEntry | None:
        with self._lock:
            entry = self._files.get(key)
            return _copy(entry) if entry is not None else None

    def put(self, key: str, entry: FileEntry) -> None:
        with self._lock:
            self._files[key] = _copy(entry)

    def pop(self, key: str) -> FileEntry | None:
        with self._lock:
            return self._files.pop(key, None)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, key: str) -> bool:
        return key in self._files

    def chunk_ids(self) -> set[str]:
        with self._lock:
            return {cid for entry in self._files.values() for cid in entry.chunk_ids}

    def save(self) -> None:
        with self._lock:
            payload = {"version": self.VERSION, "files": {k: asdict(v) for k, v in sorted(self._files.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{threading.get_ident()}.tmp")  # two savers never share a temp file
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
        self.unreadable = None


def _copy(entry: FileEntry) -> FileEntry:
    return replace(entry, chunk_ids=list(entry.chunk_ids))


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_key(parts: dict[str, object]) -> str:
    """A short stable hash of everything that changes how a file becomes chunks."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
