"""What the routes share: the query pipeline, the ingestor over the same index, jobs and the model gate."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from api.gate import ModelGate
from api.jobs import JobQueue
from ingest.manifest import FileEntry
from ingest.pipeline import FolderIngestor
from ingest.progress import IngestProgress
from rag import collections
from rag.collections import DEFAULT_COLLECTION, UnknownCollection, check_name
from rag.errors import InvalidRequest
from rag.keys import KeyStore
from rag.pipeline import QueryPipeline
from rag.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    """One collection's pipeline, ingestor and documents, plus what all collections share (the model gate,
    the job queue). ``collection(name)`` gives another collection's ``Services``, built on first use over
    the same loaded models."""

    settings: Settings
    pipeline: QueryPipeline
    ingestor: FolderIngestor
    gate: ModelGate
    jobs: JobQueue = field(default_factory=JobQueue)
    # Ingestion and deletion change the manifest: one at a time (queries are not blocked by it).
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)
    name: str = DEFAULT_COLLECTION
    root: Settings | None = None  # the index folder's settings (the default collection's)
    keys: KeyStore | None = None  # the index folder's scoped API keys (shared by every collection)
    _named: dict[str, Services] = field(default_factory=dict)
    _named_lock: threading.Lock = field(default_factory=threading.Lock)

    # --- collections ------------------------------------------------------------------------------
    @property
    def index_settings(self) -> Settings:
        """The index folder's settings (the default collection's), whichever collection these services are."""
        return self.root or self.settings

    def collection_names(self) -> list[str]:
        return collections.list_collections(self.index_settings.index_dir)

    def collection(self, name: str | None) -> Services:
        """The services of collection ``name`` (None or "default": these); ``UnknownCollection`` if it does
        not exist."""
        if name is None or name == self.name:
            return self
        root = self.index_settings
        check_name(name)
        with self._named_lock:
            if name not in self._named:
                if not collections.exists(root.index_dir, name):
                    raise UnknownCollection(name, collections.list_collections(root.index_dir))
                settings = root.for_collection(name)
                pipeline = self.pipeline.sibling(settings)
                self._named[name] = Services.build(settings, pipeline, gate=self.gate, jobs=self.jobs, name=name,
                                                   root=root)
            return self._named[name]

    def collections(self) -> list[dict[str, Any]]:
        return [{"name": name, "documents": len(self.collection(name).ingestor.manifest)}
                for name in self.collection_names()]

    def create_collection(self, name: str) -> bool:
        """False when it already existed."""
        return collections.create(self.index_settings.index_dir, check_name(name))

    def delete_collection(self, name: str) -> None:
        if name == DEFAULT_COLLECTION:
            raise InvalidRequest("the default collection cannot be deleted; delete its documents instead")
        named = self.collection(name)  # UnknownCollection when there is none
        with named.ingest_lock:
            with self._named_lock:
                self._named.pop(name, None)
            named.pipeline.index.drop()
            collections.remove(self.index_settings.index_dir, name)

    @classmethod
    def build(cls, settings: Settings, pipeline: QueryPipeline, gate: ModelGate | None = None,
              jobs: JobQueue | None = None, name: str = DEFAULT_COLLECTION, root: Settings | None = None) -> Services:
        ingestor = FolderIngestor(settings, index=pipeline.index, embedder=pipeline.embedder)
        # A server killed in the middle of an ingest left a journal of what it was writing, a manifest may have
        # been lost or put back from an older copy, a derived file removed: repair before the first query, so
        # that every store and the list agree (``ingest.repair``: nothing a user did not remove is deleted).
        # Uploads whose write was undone are not in the manifest, so resume_uploads ingests them again.
        ingestor.repair()
        services = cls(settings, pipeline, ingestor, gate or ModelGate(settings.max_waiting_requests),
                       jobs or JobQueue(), name=name, root=root,
                       keys=KeyStore((root or settings).index_dir))
        services.resume_uploads()
        return services

    def resume_uploads(self) -> None:
        """Uploads kept on disk but not in the manifest (the server stopped before their job ended): ingest
        them in a background job, so that an accepted upload is never lost to a crash."""
        uploads = self.settings.uploads.resolve()
        files = self.ingestor.manifest.files  # a copy
        if uploads.is_dir() and any(str(p) not in files for p in uploads.iterdir() if p.is_file()):
            log.warning("resuming uploads that were not ingested when the server stopped")
            self.jobs.submit_tracked(uploads.name, lambda job: self.ingest(uploads, job.follow), self.name)

    def ingest(self, path: Path,
               on_progress: Callable[[IngestProgress], None] | None = None) -> dict[str, Any]:
        with self.ingest_lock:
            report = self.ingestor.run(path, on_progress=on_progress)
        return {"ingested": report.ingested, "unchanged": report.unchanged,
                "failed": [asdict(f) for f in report.failed], "chunks": report.chunks, "pages": report.pages,
                "seconds": round(report.seconds, 3),
                "documents": [self.document(self.find(str(path.resolve())))] if not report.failed else []}

    def ingest_folder(self, path: Path, on_progress: Callable[[IngestProgress], None] | None = None,
                      confine: bool = True) -> dict[str, Any]:
        """A folder handed over by ``rag ingest`` (read only inside it: ``confine``) or watched by the server;
        reported as the CLI would."""
        with self.ingest_lock:
            report = self.ingestor.run(path, confine=confine, on_progress=on_progress)
        return {"ingested": report.ingested, "unchanged": report.unchanged, "removed": report.removed,
                "failed": [asdict(f) for f in report.failed], "chunks": report.chunks, "pages": report.pages,
                "seconds": round(report.seconds, 3), "summary": report.summary()}

    def job(self, job_id: str, may_see: Callable[[str], bool] = lambda _: True) -> dict[str, Any]:
        """A job's state for the status routes; ``LookupError`` when there is no such job or ``may_see`` (given
        the job's collection) says no: a job of a collection the key cannot see is not there for it."""
        job = self.jobs.get(job_id)
        if job is None or not may_see(job.collection):
            raise LookupError(f"no ingestion job {job_id!r}")
        return job.to_dict()

    def find(self, key_or_id: str) -> tuple[str, FileEntry] | None:
        files = self.ingestor.manifest.files  # a copy, taken under the manifest's lock
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
        files = self.ingestor.manifest.files  # a copy, taken under the manifest's lock
        return sorted((self.document(item) for item in files.items()),
                      key=lambda d: d["source"])

    def delete(self, doc_id: str) -> dict[str, Any] | None:
        with self.ingest_lock:
            found = self.find(doc_id)
            if found is None:
                return None
            key, entry = found
            self.ingestor.remove(key)
            self.ingestor.save()
            uploaded = Path(key)
            if uploaded.parent == self.settings.uploads.resolve() and uploaded.exists():
                uploaded.unlink()  # an uploaded copy goes too; files in users' own folders are never touched
            return self.document(found)
