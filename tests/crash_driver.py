"""Runs ``rag ARGS`` in this process and kills it with SIGKILL at a named point (crash-recovery tests).

    python -m tests.crash_driver POINT ingest DIR --index IDX

POINT: ``parse:NAME`` (when the PDF parser starts on the file NAME), ``chroma-add:NAME`` (half-way through writing
the chunks of the file NAME to Chroma), ``bm25-save`` (after every Chroma write,
before the BM25 index is saved), ``manifest-write`` (half-way through writing the manifest's temporary file).
Nothing is simulated after the kill: the next run sees exactly what a real crash leaves on disk.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    if point.startswith("parse:"):
        # Parsed here, not in a worker process (RAG_PARSE_WORKERS): the kill must hit the ingesting process while
        # the file is parsed, which a patch of this process's parser can only do when this process parses.
        os.environ["RAG_PARSE_WORKERS"] = "0"
        import ingest.pipeline
        from ingest.pdf import PdfParser

        # The scenario is a kill before anything was saved: no periodic save (every 30 s) may come first on a
        # slow or busy machine, where parsing the first files can take longer than that.
        ingest.pipeline._SAVE_EVERY_S = float("inf")

        name, real_parse = point.split(":", 1)[1], PdfParser.parse

        def parse(self, path, source):
            if source == name:
                die()
            return real_parse(self, path, source)

        PdfParser.parse = parse
    elif point.startswith("chroma-add:"):
        import ingest.pipeline
        from rag.vectorstore import ChromaStore

        ingest.pipeline._SAVE_EVERY_S = float("inf")  # nothing of the run saved before the kill
        name, real_add = point.split(":", 1)[1], ChromaStore.add

        def add(self, chunks, embeddings, vectors_only=False):
            if chunks and chunks[0].metadata.source == name and not vectors_only:
                half = max(1, len(chunks) // 2)
                real_add(self, chunks[:half], embeddings[:half])
                die()
            return real_add(self, chunks, embeddings, vectors_only=vectors_only)

        ChromaStore.add = add
    elif point == "bm25-save":
        from rag.bm25 import BM25Index

        BM25Index.save = lambda self, **_: die()
    elif point == "manifest-write":
        real_write = Path.write_text

        def write_text(self, data, *args, **kwargs):
            if self.name.startswith("manifest.") and self.name.endswith(".tmp"):  # manifest.<thread>.tmp
                real_write(self, data[: len(data) // 2], *args, **kwargs)
                die()
            return real_write(self, data, *args, **kwargs)

        Path.write_text = write_text
    else:
        raise SystemExit(f"unknown kill point {point!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    from rag.cli import main

    raise SystemExit(main(sys.argv[2:]))
