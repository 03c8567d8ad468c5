"""What the routes share: the query pipeline, the ingestor over the same index, jobs and the model gate."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from api.gate import ModelGate
from api.jobs import JobQueue
from ingest.manifest import FileEntry
from ingest.pipeline import FolderIngestor
from rag.pipeline import QueryPipeline
from rag.settings import Settings


@dataclass
class Services:
    settings: Settings
    pipeline: QueryPipeline
    ingestor: FolderIngestor
    gate: ModelGate
    jobs: JobQueue = field(default_factory=JobQueue)
    # Ingestion and deletion change the manifest: one at a time (queries are not blocked by it).
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings, pipeline: QueryPipeline) -> Services:
        ingestor = FolderIngestor(settings, index=pipeline.index, embedder=pipeline.embedder)
        return cls(settings, pipeline, ingestor, ModelGate(settings.max_waiting_requests))

    def ingest(self, path: Path) -> dict[str, Any]:
        with self.ingest_lock:
            report = self.ingestor.run(path)
        return {"ingested": report.ingested, "unchanged": report.unchanged,
                "failed": [asdict(f) for f in report.failed], "chunks": report.chunks, "pages": report.pages,
                "seconds": round(report.seconds, 3),
                "documents": [self.document(self.find(str(path.resolve())))] if not report.failed else []}

    def find(self, key_or_id: str) -> tuple[str, FileEntry] | None:
        files = self.ingestor.manifest.files
        if key_or_id in files:
            return key_or_id, files[key_or_id]
        return next(((k, e) for k, e in files.items() if e.doc_id == key_or_id), None)

    @staticmethod
    def document(found: tuple[str, FileEntry] | None) -> dict[str, Any]:
        if found is None:
            return {}
        _, entry = found
        return {"id": entry.doc_id, "source": entry.source, "pages": entry.pages, "chunks": len(entry.chunk_ids),
                "content_hash": entry.content_hash, "ingested_at": entry.ingested_at}

    def documents(self) -> list[dict[str, Any]]:
        return sorted((self.document(item) for item in self.ingestor.manifest.files.items()),
                      key=lambda d: d["source"])

    def delete(self, doc_id: str) -> dict[str, Any] | None:
        with self.ingest_lock:
            found = self.find(doc_id)
            if found is None:
                return None
            key, entry = found
            self.ingestor.index.delete(entry.chunk_ids)
            del self.ingestor.manifest.files[key]
            self.ingestor.save()
            uploaded = Path(key)
            if uploaded.parent == self.settings.uploads.resolve() and uploaded.exists():
                uploaded.unlink()  # an uploaded copy goes too; files in users' own folders are never touched
            return self.document(found)
