"""Concurrent clients against a running API: latency percentiles and responses by status.

Usage: python -m bench.load --base http://127.0.0.1:8000 [--requests 50 --concurrency 8 --api-key K]
Also used by tests/test_api_server.py with a server started on loopback.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

QUESTIONS = [json.loads(line)["question"]
             for line in (Path(__file__).resolve().parent.parent / "data" / "qa.jsonl").read_text().splitlines()
             if line.strip()]


@dataclass
class LoadResult:
    statuses: Counter = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    bodies: list[tuple[int, dict]] = field(default_factory=list)
    wall_s: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    @property
    def answered(self) -> float:
        """Share of requests answered (200 and not an abstention)."""
        total = len(self.bodies)
        return sum(1 for status, body in self.bodies if status == 200 and not body.get("abstained")) / total if total else 0.0

    def summary(self) -> str:
        errors = sum(n for status, n in self.statuses.items() if status != 200)
        return (f"requests {sum(self.statuses.values())}, wall {self.wall_s:.1f} s, "
                f"p50 {self.percentile(0.5):.2f} s, p95 {self.percentile(0.95):.2f} s, "
                f"mean {statistics.mean(self.latencies_s or [0]):.2f} s, by status {dict(sorted(self.statuses.items()))}, "
                f"errors {errors}, answered {self.answered:.2%}")


def run_load(base: str, requests: int = 50, concurrency: int = 8, api_key: str | None = None,
             max_tokens: int = 32, retries: int = 0) -> LoadResult:
    """``retries``: how often a client that got 503 waits Retry-After and tries again (0: never)."""
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
        result.latencies_s.append(time.perf_counter() - started)
        result.statuses[response.status_code] += 1
        result.bodies.append((response.status_code, response.json()))

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    result.wall_s = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--api-key")
    parser.add_argument("--retries", type=int, default=0, help="retries after a 503, honouring Retry-After")
    args = parser.parse_args()
    print(run_load(args.base, args.requests, args.concurrency, args.api_key, retries=args.retries).summary())


if __name__ == "__main__":
    main()
