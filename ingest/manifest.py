"""The ingestion manifest: which file version, parsed and chunked how, owns which chunk ids."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


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
    """Keyed by absolute file path; saved atomically so a killed run leaves the previous version."""

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, FileEntry] = {}
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != self.VERSION:
                raise ValueError(f"{path}: unsupported manifest version {data.get('version')!r}")
            self.files = {key: FileEntry(**entry) for key, entry in data["files"].items()}

    def chunk_ids(self) -> set[str]:
        return {cid for entry in self.files.values() for cid in entry.chunk_ids}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        payload = {"version": self.VERSION, "files": {k: asdict(v) for k, v in sorted(self.files.items())}}
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_key(parts: dict[str, object]) -> str:
    """A short stable hash of everything that changes how a file becomes chunks."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
