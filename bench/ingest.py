"""Ingestion speed per chunker over shared/corpus/pdf_text, against embedding alone.

For each chunker: pages/s and chunks/s of a full ingest into a fresh index, the time of each stage,
and the ratio of the whole ingest to just embedding the same chunk texts with the same model and
batch size (1.0 would mean parsing, chunking and indexing cost nothing).

Usage: python -m bench.ingest [--shared ../shared] [--chunkers fixed sentence-window semantic double-pass]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ingest.pipeline import FolderIngestor
from rag.embedder import SentenceTransformerEmbedder
from rag.offline import ensure_offline
from rag.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description="ingestion speed per chunker")
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--folder", help="documents to ingest (default: <shared>/corpus/pdf_text)")
    parser.add_argument("--chunkers", nargs="+", default=["fixed", "sentence-window", "semantic", "double-pass"])
    args = parser.parse_args()
    ensure_offline()
    folder = Path(args.folder) if args.folder else Path(args.shared) / "corpus" / "pdf_text"
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])  # model load is not part of any figure
    print(f"{'chunker':<16} {'pages':>5} {'chunks':>6} {'total s':>8} {'pages/s':>8} {'chunks/s':>8} "
          f"{'embed-only s':>12} {'ratio':>6}  stages")
    for chunker in args.chunkers:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(index_dir=Path(tmp), chunker=chunker)
            ingestor = FolderIngestor(settings, embedder=embedder)
            report = ingestor.run(folder)
            store = ingestor.index.store
            texts = [c.text for c in store.get(store.ids()).values()]
            started = time.perf_counter()
            embedder.embed(texts)
            embed_only = time.perf_counter() - started
        stages = ", ".join(f"{k} {v:.1f}" for k, v in report.stage_seconds.items())
        print(f"{chunker:<16} {report.pages:>5} {report.chunks:>6} {report.seconds:>8.1f} "
              f"{report.pages_per_second:>8.1f} {report.chunks / report.seconds:>8.1f} {embed_only:>12.1f} "
              f"{report.seconds / embed_only:>6.2f}  {stages}", flush=True)


if __name__ == "__main__":
    main()
