"""Concurrent clients against a running API: latency percentiles and responses by status, optionally
while files are uploaded to the same server.

Usage: python -m bench.load --base http://127.0.0.1:8000 [--requests 50 --concurrency 8 --api-key K]
       [--upload FILE ... [--upload-delay S]]
Also used by tests/test_api_server.py with a server started on loopback.

``--upload``: while the question clients run, one more client uploads the files, one after the other, to
the same server (``POST /v1/ingest/file``; an upload the server makes a background job counts until its job
is done, polled at ``GET /v1/ingest/jobs/{id}``), starting ``--upload-delay`` seconds after the questions.
Questions whose time overlaps an upload's are reported apart from the others (p50, p95, max, errors). A file
already in the index unchanged is a quick no-op for the server: upload files it does not hold (or use a fresh
index) to measure an ingest.

The last line printed is JSON: ``requests``, ``wall_s``, ``p50_s``, ``p95_s``, ``max_s``, ``errors``,
``answered``, ``by_status``; with ``--upload`` also ``during_uploads`` and ``without_uploads``
(``requests``, ``p50_s``, ``p95_s``, ``max_s``, ``errors`` each) and ``uploads`` (``name``, ``seconds``,
``status``, ``state``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

QUESTIONS = [json.loads(line)["question"]
             for line in (Path(__file__).resolve().parent.parent / "data" / "qa.jsonl").read_text().splitlines()
             if line.strip()]


@dataclass(frozen=True)
class Asked:
    """One question: when it was sent and answered (``time.perf_counter``), and the answer."""

    started: float
    ended: float
    status: int
    body: dict

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class Upload:
    """One uploaded file, from its request until its ingestion ended (a background job's end)."""

    name: str
    started: float
    ended: float
    status: int  # of the upload request: 200 ingested at once, 202 a job
    state: str  # "done", "failed" (with ``detail``), or "refused"
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def figures(asked: list[Asked]) -> dict:
    """p50 / p95 / max seconds and errors (any status but 200) of some questions."""
    seconds = [a.seconds for a in asked]
    return {"requests": len(asked), "p50_s": round(percentile(seconds, 0.5), 3),
            "p95_s": round(percentile(seconds, 0.95), 3), "max_s": round(max(seconds, default=0.0), 3),
            "errors": sum(1 for a in asked if a.status != 200)}


@dataclass
class LoadResult:
    asked: list[Asked] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def statuses(self) -> Counter:
        return Counter(a.status for a in self.asked)

    @property
    def latencies_s(self) -> list[float]:
        return [a.seconds for a in self.asked]

    @property
    def bodies(self) -> list[tuple[int, dict]]:
        return [(a.status, a.body) for a in self.asked]

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_s, q)

    @property
    def answered(self) -> float:
        """Share of requests answered (200 and not an abstention)."""
        total = len(self.asked)
        answered = sum(1 for a in self.asked if a.status == 200 and not a.body.get("abstained"))
        return answered / total if total else 0.0

    def during_uploads(self) -> tuple[list[Asked], list[Asked]]:
        """The questions whose time overlaps an upload's, and the others."""
        during, without = [], []
        for a in self.asked:
            overlaps = any(a.started < u.ended and u.started < a.ended for u in self.uploads)
            (during if overlaps else without).append(a)
        return during, without

    def summary(self) -> str:
        errors = sum(n for status, n in self.statuses.items() if status != 200)
        lines = [f"requests {len(self.asked)}, wall {self.wall_s:.1f} s, "
                 f"p50 {self.percentile(0.5):.2f} s, p95 {self.percentile(0.95):.2f} s, "
                 f"max {max(self.latencies_s, default=0.0):.2f} s, "
                 f"mean {statistics.mean(self.latencies_s or [0]):.2f} s, "
                 f"by status {dict(sorted(self.statuses.items()))}, errors {errors}, "
                 f"answered {self.answered:.2%}"]
        if self.uploads:
            for label, part in zip(("during uploads", "without uploads"), self.during_uploads(), strict=True):
                f = figures(part)
                lines.append(f"  {label:<15} {f['requests']:>4} questions, p50 {f['p50_s']:.2f} s, "
                             f"p95 {f['p95_s']:.2f} s, max {f['max_s']:.2f} s, errors {f['errors']}")
            lines.extend(f"  upload {u.name}: {u.state} after {u.seconds:.1f} s (HTTP {u.status})"
                         + (f": {u.detail}" if u.detail else "") for u in self.uploads)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        whole = figures(self.asked)
        data = {**whole, "wall_s": round(self.wall_s, 2), "answered": round(self.answered, 4),
                "by_status": {str(k): v for k, v in sorted(self.statuses.items())}}
        if self.uploads:
            during, without = self.during_uploads()
            data |= {"during_uploads": figures(during), "without_uploads": figures(without),
                     "uploads": [{"name": u.name, "seconds": round(u.seconds, 2), "status": u.status,
                                  "state": u.state} for u in self.uploads]}
        return data


def upload_all(base: str, files: list[Path], headers: dict, poll_s: float = 0.5) -> list[Upload]:
    """Upload ``files`` one after the other; each until its ingestion ended."""
    done = []
    with httpx.Client(timeout=600, headers=headers) as client:
        for path in files:
            started = time.perf_counter()
            response = client.post(f"{base}/v1/ingest/file",
                                   files={"file": (path.name, path.read_bytes(), "application/octet-stream")})
            state, detail = ("done", "") if response.status_code == 200 else ("refused", response.text[:200])
            if response.status_code == 202:  # a background job: it counts until the job ends
                url = f"{base}{response.json()['status_url']}"
                while (job := client.get(url).json())["state"] not in ("done", "failed"):
                    time.sleep(poll_s)
                state, detail = job["state"], job.get("error") or ""
            done.append(Upload(path.name, started, time.perf_counter(), response.status_code, state, detail))
    return done


def run_load(base: str, requests: int = 50, concurrency: int = 8, api_key: str | None = None,
             max_tokens: int = 32, retries: int = 0, upload: list[Path] | None = None,
             upload_delay_s: float = 0.0) -> LoadResult:
    """``requests`` questions (after one unmeasured: a fresh server loads its index on its first query);
    ``retries``: how often a client that got 503 waits Retry-After and tries again (0: never);
    ``upload``: files uploaded meanwhile (``upload_all``), ``upload_delay_s`` after the first question."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    result = LoadResult()

    def one(i: int) -> None:
        started = time.perf_counter()
        with httpx.Client(timeout=300, headers=headers) as client:
            for attempt in range(retries + 1):
                response = client.post(f"{base}/v1/query", json={"question": QUESTIONS[i % len(QUESTIONS)],
                                                                 "max_tokens": max_tokens})
                if response.status_code != 503 or attempt == retries:
                    break
                time.sleep(float(response.headers.get("retry-after", "1")))
        result.asked.append(Asked(started, time.perf_counter(), response.status_code, response.json()))

    def uploads() -> None:
        time.sleep(upload_delay_s)
        result.uploads.extend(upload_all(base, upload or [], headers))

    with httpx.Client(timeout=300, headers=headers) as client:  # unmeasured: a fresh server's first query
        client.post(f"{base}/v1/query", json={"question": QUESTIONS[0], "max_tokens": max_tokens})
    uploader = threading.Thread(target=uploads, daemon=True) if upload else None
    started = time.perf_counter()
    if uploader is not None:
        uploader.start()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    result.wall_s = time.perf_counter() - started
    if uploader is not None:
        uploader.join()  # the report needs every upload's end
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--api-key")
    parser.add_argument("--retries", type=int, default=0, help="retries after a 503, honouring Retry-After")
    parser.add_argument("--upload", nargs="+", type=Path, default=[], metavar="FILE",
                        help="files to upload to the same server while the questions run")
    parser.add_argument("--upload-delay", type=float, default=0.0, metavar="S",
                        help="seconds after the first question before the first upload")
    args = parser.parse_args()
    missing = [str(p) for p in args.upload if not p.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    result = run_load(args.base, args.requests, args.concurrency, args.api_key, retries=args.retries,
                      upload=args.upload, upload_delay_s=args.upload_delay)
    print(result.summary())
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main()
