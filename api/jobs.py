"""Background ingestion jobs: one worker thread, status kept in memory."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

JobState = Literal["queued", "running", "done", "failed"]


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
    progress: dict[str, Any] = field(default_factory=dict)  # e.g. files done / to do, the current file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobQueue:
    """Runs ingestion jobs one at a time off the request path; queries keep being answered."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, file_name: str, work: Callable[[], dict[str, Any]], collection: str = "default") -> Job:
        return self.submit_tracked(file_name, lambda _: work(), collection)

    def submit_tracked(self, file_name: str, work: Callable[[Job], dict[str, Any]],
                       collection: str = "default") -> Job:
        """Like ``submit``; ``work`` gets its job, to report progress in ``job.progress``."""
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
