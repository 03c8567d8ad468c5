"""Ingestion jobs run behind the questions (api/jobs.py)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from api.jobs import INGEST_NICENESS, JobQueue


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_a_job_runs_at_a_lower_cpu_priority_and_its_threads_too():
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = {}

    def work() -> dict:
        seen["job"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        child = threading.Thread(target=lambda: seen.update(
            child=os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        child.start()
        child.join()
        return {}

    queue = JobQueue()
    job = queue.submit("f.pdf", work)
    queue.shutdown()
    assert job.state == "done", job.error
    expected = min(base + INGEST_NICENESS, 19)
    assert seen == {"job": expected, "child": expected}  # a thread the job starts (the embedding's) inherits it
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller's is untouched
