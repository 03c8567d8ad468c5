"""Query latency on a large index: retrieval alone, and a full answer.

Usage: python -m bench.retrieval --index DIR --queries QUERIES.jsonl [--n 200] [--answers 20] [--mode extractive]
Retrieval = the pipeline's search step (language detection, expansion, BM25 + dense + fusion, re-ranking as the
settings say); "full answer" runs the whole pipeline (gates, generation or quotes, grounding). Models are loaded
before timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rag.pipeline import QueryOptions, QueryPipeline
from rag.settings import Settings


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description="query latency on a large index")
    parser.add_argument("--index", required=True)
    parser.add_argument("--queries", required=True, help="JSONL with a 'text' or 'question' field per line")
    parser.add_argument("--n", type=int, default=200, help="queries for the retrieval timing")
    parser.add_argument("--answers", type=int, default=20, help="queries for the full-answer timing")
    parser.add_argument("--mode", default="auto", choices=["auto", "extractive", "generative"])
    args = parser.parse_args()
    rows = [json.loads(line) for line in Path(args.queries).read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = [r.get("text") or r["question"] for r in rows]
    pipeline = QueryPipeline.from_settings(Settings(index_dir=Path(args.index)))
    pipeline.warm_up()
    print(f"index: {pipeline.index.store.count()} chunks")
    retrieval = []
    for query in queries[:args.n]:
        started = time.perf_counter()
        pipeline.search(query)
        retrieval.append((time.perf_counter() - started) * 1000)
    print(f"retrieval ({len(retrieval)} queries): p50 {_pct(retrieval, .5):.1f} ms, p95 {_pct(retrieval, .95):.1f} ms, "
          f"mean {statistics.mean(retrieval):.1f} ms")
    full, stages = [], {}
    for query in queries[:args.answers]:
        started = time.perf_counter()
        answer = pipeline.answer(query, QueryOptions(answer_mode=args.mode))
        full.append((time.perf_counter() - started) * 1000)
        for stage, ms in answer.trace.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    if not full:
        return  # --answers 0: retrieval only
    print(f"full answer, {args.mode} ({len(full)} queries): p50 {_pct(full, .5):.0f} ms, p95 {_pct(full, .95):.0f} ms")
    print("  median per stage: " + ", ".join(f"{k} {statistics.median(v):.0f} ms" for k, v in stages.items()))


if __name__ == "__main__":
    main()
