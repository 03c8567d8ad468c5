"""Ordinary questions while two clients send the largest requests the server accepts (issue 45).

4 clients ask the questions of data/qa.jsonl over /v1/query, first alone (idle), then while one client sends the
largest accepted chat completion (RAG_MAX_MESSAGES messages of RAG_MAX_TEXT_CHARS characters) and another the
largest embeddings request (RAG_MAX_EMBEDDING_INPUTS inputs of RAG_MAX_TEXT_CHARS characters), each in a loop
with new texts every time (so nothing is answered from a cache).
Prints the p50/p95 latency of the ordinary questions in both phases (target: p95 under abuse within 2x idle).

Usage:
  python -m bench.abuse --base http://127.0.0.1:8000            # a server you started (rag serve)
  python -m bench.abuse --index .rag-index                        # starts `rag serve` on that index itself
Another tree's server (e.g. the code before this change): PYTHONPATH=/path/to/tree python -m bench.abuse --index …
(the server runs with the same PYTHONPATH). A measurement, not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.load import QUESTIONS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


_WORDS = [w for q in QUESTIONS for w in q.split()]


def _text(chars: int, rng: random.Random) -> str:
    """Question-like prose of exactly ``chars`` characters, from the demo questions' words."""
    out, length = [], 0
    while length < chars:
        out.append(rng.choice(_WORDS))
        length += len(out[-1]) + 1
    return " ".join(out)[:chars - 1] + "?"


def abusive_bodies(chars: int, messages: int, inputs: int, seed: int = 45) -> tuple[dict, dict]:
    """The largest chat and embeddings requests; a new ``seed``, new texts (nothing the server has cached)."""
    rng = random.Random(seed)
    turns = [{"role": "system" if i == 0 else ("user" if i % 2 else "assistant"), "content": _text(chars, rng)}
             for i in range(messages - 1)]
    chat = {"messages": [*turns, {"role": "user", "content": _text(chars, rng)}], "max_tokens": 64}
    embeddings = {"input": [_text(chars, rng) for _ in range(inputs)]}
    return chat, embeddings


def ask(base: str, headers: dict, clients: int, per_client: int, phase: str = "") -> tuple[list[float], Counter]:
    """``clients`` clients asking ``per_client`` questions each; a phase's questions are new to the server
    (numbered), so that each one is embedded as a user's would be, not answered from the embedders' caches."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()

    def client(c: int) -> None:
        with httpx.Client(timeout=600, headers=headers) as http:
            for i in range(per_client):
                question = f"{QUESTIONS[(c * per_client + i) % len(QUESTIONS)]} ({phase}{c}.{i})"
                started = time.perf_counter()
                response = http.post(f"{base}/v1/query", json={"question": question})
                with lock:
                    latencies.append(time.perf_counter() - started)
                    statuses[response.status_code] += 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return latencies, statuses


@contextmanager
def abusing(base: str, headers: dict, chars: int, messages: int, inputs: int):
    """Two clients sending the largest requests again and again, new texts each time, until the block ends."""
    stop = threading.Event()
    record: dict[str, list] = {"chat": [], "embeddings": []}
    started_at: dict[str, int] = {}

    def loop(route: str, which: int, name: str) -> None:
        seed = 1000 * which
        with httpx.Client(timeout=600, headers=headers) as http:
            while not stop.is_set():
                seed += 1
                body = abusive_bodies(chars, messages, inputs, seed)[which]
                started = time.perf_counter()
                started_at[name] = started_at.get(name, 0) + 1
                try:
                    status = http.post(f"{base}{route}", json=body).status_code
                except Exception as exc:  # noqa: BLE001 - reported with the results
                    status = f"{type(exc).__name__}: {exc}"[:120]
                record[name].append((status, time.perf_counter() - started))

    threads = [threading.Thread(target=loop, args=("/v1/chat/completions", 0, "chat"), daemon=True),
               threading.Thread(target=loop, args=("/v1/embeddings", 1, "embeddings"), daemon=True)]
    for thread in threads:
        thread.start()
    time.sleep(2)  # both are in the server before the questions start
    try:
        yield record
    finally:
        record["sent"] = started_at
        stop.set()
        for thread in threads:
            thread.join(timeout=5)  # a request in flight is left to the server (stopped next)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(index: Path):
    port = _free_port()
    command = [sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main())",
               "serve", "--index", str(index), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if server.poll() is not None:
                raise SystemExit(f"rag serve exited with {server.returncode}")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("rag serve was not ready after 600 s")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def run(base: str, headers: dict, clients: int, per_client: int, chars: int, messages: int, inputs: int) -> None:
    chat, embeddings = abusive_bodies(chars, messages, inputs)
    ask(base, headers, clients, -(-len(QUESTIONS) // clients), "warm ")  # the documents' sentences are embedded
    idle, idle_status = ask(base, headers, clients, per_client, "idle ")
    with abusing(base, headers, chars, messages, inputs) as record:
        loaded, loaded_status = ask(base, headers, clients, per_client, "abuse ")
    p50, p95 = percentile(idle, 0.5), percentile(idle, 0.95)
    a50, a95 = percentile(loaded, 0.5), percentile(loaded, 0.95)
    print(f"ordinary questions: {clients} clients x {per_client}")
    print(f"  idle         p50 {p50:.2f} s  p95 {p95:.2f} s  statuses {dict(idle_status)}")
    print(f"  under abuse  p50 {a50:.2f} s  p95 {a95:.2f} s  statuses {dict(loaded_status)}")
    print(f"  p95 under abuse / idle: {a95 / p95:.2f}x (target <= 2x)")
    print(f"  abusers' requests sent: {record.pop('sent')}")
    for name, rows in record.items():
        statuses = Counter(str(s) for s, _ in rows)
        mean = sum(t for _, t in rows) / len(rows) if rows else float("nan")
        print(f"  abuser {name}: {len(rows)} answered while the questions ran, mean {mean:.1f} s, "
              f"statuses {dict(statuses)}")
    print(f"  chat body {len(httpx.Request('POST', base, json=chat).content) / 1e3:.0f} KB "
          f"({messages} messages x {chars} chars), embeddings body "
          f"{len(httpx.Request('POST', base, json=embeddings).content) / 1e3:.0f} KB ({inputs} inputs x {chars} chars)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--base", help="a running server")
    where.add_argument("--index", type=Path, help="start `rag serve` on this index (e.g. after `make run`)")
    parser.add_argument("--api-key")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--questions", type=int, default=15, help="questions per ordinary client and phase")
    parser.add_argument("--chars", type=int, default=4000, help="RAG_MAX_TEXT_CHARS of the server")
    parser.add_argument("--messages", type=int, default=32, help="RAG_MAX_MESSAGES of the server")
    parser.add_argument("--inputs", type=int, default=256, help="RAG_MAX_EMBEDDING_INPUTS of the server")
    args = parser.parse_args()
    headers = {"authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    if args.base:
        run(args.base, headers, args.clients, args.questions, args.chars, args.messages, args.inputs)
        return
    with served(args.index) as base:
        run(base, headers, args.clients, args.questions, args.chars, args.messages, args.inputs)


if __name__ == "__main__":
    main()
