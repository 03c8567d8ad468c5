"""Background ingestion jobs: one worker thread, status kept in memory."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ingest.progress import IngestProgress

JobState = Literal["queued", "running", "done", "failed"]
INGEST_NICENESS = 10  # added to the ingestion thread's scheduling priority: questions come first

log = logging.getLogger(__name__)


def _yield_to_questions() -> None:
    """Run this (the job) thread at a lower CPU priority than the request threads. Linux keeps a priority per
    thread and a new thread inherits its creator's: the embedding runtime's threads, which the ingestion's own
    ONNX Runtime session starts from here on its first batch, and the parsing worker started from here, run
    behind the questions too. Elsewhere, or where it is not allowed, nothing changes."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INGEST_NICENESS)
    except (AttributeError, OSError) as exc:  # not Linux/Unix, or not permitted
        log.info("ingestion jobs keep the normal CPU priority (%s)", exc)


@dataclass
class Job:
    id: str
    file_name: str
    collection: str = "default"  # a job belongs to its collection: only keys that may write there see it
    state: JobState = "queued"
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    # The ingestion's latest snapshot, replaced whole by the worker (``follow``): a reader sees one moment.
    counts: IngestProgress | None = None

    def follow(self, progress: IngestProgress) -> None:
        """Record the ingestion's progress (the ingest's ``on_progress``)."""
        self.counts = progress

    def to_dict(self) -> dict[str, Any]:
        """The job's JSON: its state, and its progress both as ``progress`` (files done / to do, the current
        file: what the hand-over always showed) and as ``IngestProgress`` fields (files and pages done of the
        total, pages/s, seconds left)."""
        counts = self.counts  # read once: the worker may replace it meanwhile
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "counts"}
        if counts is None:  # not started: nothing known, no time left to tell
            return {**data, "progress": {}, **IngestProgress().to_dict(), "eta_seconds": None}
        return {**data, "progress": {"done": counts.files_done, "total": counts.files_total,
                                     "current": counts.current}, **counts.to_dict()}


class JobQueue:
    """Runs ingestion jobs one at a time off the request path; queries keep being answered."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-job",
                                        initializer=_yield_to_questions)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, file_name: str, work: Callable[[], dict[str, Any]], collection: str = "default") -> Job:
        return self.submit_tracked(file_name, lambda _: work(), collection)

    def submit_tracked(self, file_name: str, work: Callable[[Job], dict[str, Any]],
                       collection: str = "default") -> Job:
        """Like ``submit``; ``work`` gets its job, to report progress with ``job.follow``."""
        job = Job(uuid.uuid4().hex, file_name, collection)
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: Job, work: Callable[[Job], dict[str, Any]]) -> None:
        job.state = "running"
        try:
            job.result = work(job)
            job.state = "failed" if job.result.get("failed") else "done"
            if job.state == "failed":
                job.error = "; ".join(f"{f['reason']} ({f['detail']})" for f in job.result["failed"])
        except Exception as exc:  # noqa: BLE001 - a job reports its error instead of dying silently
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = time.time()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
