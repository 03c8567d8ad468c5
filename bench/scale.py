"""How far one index goes: open time, hybrid retrieval latency, peak memory and disk at N chunks.

Usage: python -m bench.scale --chunks N [N ...] [--dir .bench-scale] [--queries 200] [--dense-search exact|hnsw]

Each size is built once (cached in ``DIR/chunks-N``) through the project's own index code (``DocumentIndex.add``:
Chroma, BM25 over sentences and windows, exact vectors), from synthetic documents: 40 sentence chunks each, words
drawn from a Zipf distribution over a 50,000-word pseudo-vocabulary (as in real text, a few words are very common
and most are rare), and random unit vectors of 384 dimensions (the embedded models' size). The build and each
measurement run in processes of their own, so that open time and peak memory are those of a server
starting on that index: open the index, answer a first query (``open_s``), then ``--queries`` hybrid
retrievals (BM25 + dense + fusion, as the product runs them, with the settings of the environment, e.g.
``RAG_DENSE_SHORTLIST_ABOVE``; the query vector is random, so the embedding model's time is left out;
above ``dense_shortlist_above`` chunks the dense side shortlists by ``rag.quantized``, and
``dense_shortlist`` says so: its recall on real vectors is ``bench.shortlist``'s).

Peak memory is each process's own high-water mark (``VmHWM`` in ``/proc/self/status``), not
``ru_maxrss``: the kernel carries ``ru_maxrss`` across ``exec`` from the process that started the child
(Python starts it with ``vfork``, sharing the parent's memory), so a measurement started by the builder
reported the build's peak (1M: 10,931 MB instead of 2,409). The build reports its own peak
(``build_peak_rss_mb``) and, on stderr and in ``DIR/chunks-N/built.json``, its seconds and peak by phase
(``build_phases``).

The last line printed is JSON: ``chunks``, ``open_s``, ``retrieval_p50_ms``, ``retrieval_p95_ms``,
``peak_rss_mb``, ``disk_mb``, ``build_s``, ``build_peak_rss_mb``, ``dense_shortlist``.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.types import Chunk, ChunkMetadata

DIMENSIONS = 384
CHUNKS_PER_DOC = 40
WORDS_PER_CHUNK = 18
VOCABULARY = 50_000
BATCH_DOCS = 50
_SYLLABLES = ["ka", "lo", "mi", "ne", "ro", "ta", "su", "vi", "de", "po", "ga", "li", "no", "re", "sa", "tu"]


def pseudo_words(n: int) -> list[str]:
    """``n`` distinct pronounceable words ("kalo", "mitera"): the analyser stems and keeps them like words."""
    words, k = [], 0
    while len(words) < n:
        x, parts = k, []
        while True:
            parts.append(_SYLLABLES[x % len(_SYLLABLES)])
            x //= len(_SYLLABLES)
            if x == 0:
                break
        words.append("".join(parts) + "n")
        k += 1
    return words


class SyntheticCorpus:
    """Documents of sentence chunks with Zipf-distributed words and random unit vectors, reproducible by seed."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.words = np.array(pseudo_words(VOCABULARY))
        ranks = np.arange(1, VOCABULARY + 1)
        self.p = (1.0 / ranks) / (1.0 / ranks).sum()

    def sentence(self) -> str:
        return " ".join(self.rng.choice(self.words, size=WORDS_PER_CHUNK, p=self.p)) + "."

    def document(self, number: int) -> tuple[list[Chunk], np.ndarray]:
        doc_id = f"d{number:07d}"
        sentences = [self.sentence() for _ in range(CHUNKS_PER_DOC)]
        chunks = []
        for ordinal, text in enumerate(sentences):
            window = " ".join(sentences[max(0, ordinal - 2):ordinal + 3])
            meta = ChunkMetadata(source=f"doc{number:07d}.pdf", page=1 + ordinal // 10, doc_id=doc_id,
                                 doc_hash=doc_id, chunker="sentence-window",
                                 chunker_params=json.dumps({"window": 2}), language="en", ordinal=ordinal,
                                 window=window)
            chunks.append(Chunk(Chunk.make_id(doc_id, ordinal, text), text, meta))
        vectors = self.rng.standard_normal((CHUNKS_PER_DOC, DIMENSIONS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return chunks, vectors

    def query(self) -> str:
        return " ".join(self.rng.choice(self.words, size=8, p=self.p))


def peak_rss_mb() -> float:
    """This process's own peak resident memory since it started (or since ``reset_peak``), in MB."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: ru_maxrss (kilobytes on Linux and BSD), which exec does not reset
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


def rss_mb() -> float:
    """This process's resident memory now, in MB (0 where ``/proc`` is missing)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


def reset_peak() -> bool:
    """Set the peak back to the memory in use now (Linux 4.0+: ``/proc/self/clear_refs``); whether it
    could."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PhaseMemory:
    """Seconds, peak RSS and RSS growth per phase of a build. The peak is reset as each phase starts
    (after the phases it sits in have taken the peak so far), so a phase's peak is the highest RSS seen
    while it ran.

    >>> phases = PhaseMemory(); phases.wrap(index.bm25, "add", "bm25"); phases.table()
    """

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, float]] = {}
        self.peak_mb = 0.0  # the process's peak over every phase (resetting the mark loses it otherwise)
        self._open: list[str] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._take_peak()
        reset_peak()
        self._open.append(name)
        before, started = rss_mb(), time.perf_counter()
        try:
            yield
        finally:
            self._take_peak()
            self._open.pop()
            row = self.phases.setdefault(name, {"s": 0.0, "peak_rss_mb": 0.0, "grew_mb": 0.0})
            row["s"] += time.perf_counter() - started
            row["grew_mb"] += rss_mb() - before

    def wrap(self, owner: Any, method: str, name: str) -> None:
        """Time ``owner.method`` (on this instance only) as phase ``name``."""
        original: Callable[..., Any] = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, method, timed)

    def _take_peak(self) -> None:
        peak = peak_rss_mb()
        self.peak_mb = max(self.peak_mb, peak)
        for name in self._open:
            row = self.phases.setdefault(name, {"s": 0.0, "peak_rss_mb": 0.0, "grew_mb": 0.0})
            row["peak_rss_mb"] = max(row["peak_rss_mb"], peak)

    def rounded(self) -> dict[str, dict[str, float]]:
        return {name: {k: round(v, 1) for k, v in row.items()} for name, row in self.phases.items()}

    def table(self) -> str:
        lines = [f"  {'phase':<28} {'seconds':>8} {'peak RSS MB':>12} {'RSS grew MB':>12}"]
        lines += [f"  {name:<28} {row['s']:8.1f} {row['peak_rss_mb']:12.0f} {row['grew_mb']:12.0f}"
                  for name, row in self.phases.items()]
        return "\n".join(lines)


def build(folder: Path, chunks: int) -> dict[str, Any]:
    """Build the index of ``chunks`` chunks in ``folder`` unless it is there, in a process of its own (so
    that its peak memory is the build's alone); what ``built.json`` records (``build_s``,
    ``build_peak_rss_mb``)."""
    done = folder / "built.json"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "bench.scale", "--build", str(folder), "--chunks", str(chunks)],
                       check=True)
    else:
        upgrade(folder)
    return json.loads(done.read_text())


def build_here(folder: Path, chunks: int) -> dict[str, Any]:
    """The build itself, in this process, with seconds and peak memory by phase; written to ``built.json``."""
    from rag.index import DocumentIndex

    phases = PhaseMemory()
    started = time.perf_counter()
    with phases.phase("open"):
        index = DocumentIndex(folder)
    # What DocumentIndex.add and save do, part by part (a part's own time and peak, inside add's or save's).
    for owner, method, name in ((index.store, "add", "add: chroma sentences"),
                                (index.windows, "add", "add: chroma windows"),
                                (index.exact, "add", "add: exact matrices"),
                                (index.exact_windows, "add", "add: exact matrices"),
                                (index.bm25, "add", "add: bm25 sentences"),
                                (index.bm25_windows, "add", "add: bm25 windows"),
                                (index.bm25, "save", "save: bm25 + impacts"),
                                (index.bm25_windows, "save", "save: bm25 + impacts"),
                                (index.exact, "save", "save: exact + compact copies"),
                                (index.exact_windows, "save", "save: exact + compact copies")):
        phases.wrap(owner, method, name)
    with phases.phase("open: chunk store"):
        store = index.chunk_store()
    if store is not None:
        phases.wrap(store, "add", "add: chunk store")
    corpus = SyntheticCorpus()
    docs = max(1, chunks // CHUNKS_PER_DOC)
    for start in range(0, docs, BATCH_DOCS):
        with phases.phase("synthetic documents"):
            batch = [corpus.document(n) for n in range(start, min(docs, start + BATCH_DOCS))]
            vectors = np.vstack([v for _, v in batch])
        with phases.phase("add"):
            index.add([c for cs, _ in batch for c in cs], vectors, model_id="synthetic-384")
        print(f"\r  built {min(docs, start + BATCH_DOCS) * CHUNKS_PER_DOC:,} / {docs * CHUNKS_PER_DOC:,} chunks",
              end="", file=sys.stderr, flush=True)
    with phases.phase("save"):
        index.save()
    seconds = time.perf_counter() - started
    print(file=sys.stderr)
    print(phases.table(), file=sys.stderr)
    built = {"chunks": docs * CHUNKS_PER_DOC, "build_s": seconds,
             "build_peak_rss_mb": round(max(phases.peak_mb, peak_rss_mb())),
             "build_phases": phases.rounded()}
    (folder / "built.json").write_text(json.dumps(built))
    return built


def upgrade(folder: Path) -> None:
    """Bring an index built by an earlier version up to this one's files, as a user's next ingest would: the chunk
    store (copied out of Chroma once) and BM25's saved impacts (otherwise computed on each open's first search)."""
    from rag.index import CHUNKS_FILE, DocumentIndex

    with np.load(folder / "bm25-windows.npz") as data:
        impacts = "impact" in data.files
    if impacts and (folder / CHUNKS_FILE).exists():
        return
    started = time.perf_counter()
    index = DocumentIndex(folder)
    index.chunk_store()
    index.save()
    print(f"  {folder}: brought up to this version's files in {time.perf_counter() - started:.0f} s", file=sys.stderr)


class RandomQueryEmbedder:
    """The query side of the benchmark: random unit vectors, named like the stored ones."""

    model_id = "synthetic-384"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(11)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.rng.standard_normal((len(texts), DIMENSIONS)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def measure(folder: Path, queries: int, dense_search: str) -> dict[str, float]:
    """Open the index, answer a first query, then time ``queries`` more (run in a fresh process)."""
    from rag.index import DocumentIndex
    from rag.retriever import HybridRetriever
    from rag.settings import Settings

    settings = Settings(index_dir=folder, dense_languages=[], dense_search=dense_search)
    corpus = SyntheticCorpus(seed=3)
    texts = [corpus.query() for _ in range(queries + 1)]
    started = time.perf_counter()
    index = DocumentIndex.from_settings(settings)
    retriever = HybridRetriever.from_settings(index, RandomQueryEmbedder(), settings)
    retriever.retrieve(texts[0], "en", top_k=10)
    open_s = time.perf_counter() - started
    timings = []
    for text in texts[1:]:
        t0 = time.perf_counter()
        retriever.retrieve(text, "en", top_k=10)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return {"chunks": index.count(), "open_s": round(open_s, 2),
            "retrieval_p50_ms": round(timings[len(timings) // 2], 1),
            "retrieval_p95_ms": round(timings[min(len(timings) - 1, int(0.95 * len(timings)))], 1),
            "peak_rss_mb": round(peak_rss_mb()),
            "dense_shortlist": dense_search == "exact" and 0 < settings.dense_shortlist_above < index.count()}


def disk_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dir", default=".bench-scale", help="where the built indexes are kept")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dense-search", choices=["exact", "hnsw"], default="exact")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: measure this folder in this process
    parser.add_argument("--build", help=argparse.SUPPRESS)  # internal: build this folder in this process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.queries, args.dense_search)))
        return 0
    from rag.offline import ensure_offline

    ensure_offline()
    if args.build:
        build_here(Path(args.build), args.chunks[0])
        return 0
    results = []
    for chunks in args.chunks:
        folder = Path(args.dir) / f"chunks-{chunks}"
        built = build(folder, chunks)
        run = subprocess.run([sys.executable, "-m", "bench.scale", "--measure", str(folder), "--queries",
                              str(args.queries), "--dense-search", args.dense_search],
                             capture_output=True, text=True, check=True)
        row = {**json.loads(run.stdout.strip().splitlines()[-1]), "disk_mb": disk_mb(folder),
               "build_s": round(built["build_s"], 1), "build_peak_rss_mb": built.get("build_peak_rss_mb"),
               "dense_search": args.dense_search}
        results.append(row)
        peak = row["build_peak_rss_mb"]
        build_peak = f"{peak:,.0f} MB" if peak is not None else "not recorded"  # a build from before it
        print(f"{row['chunks']:>10,} chunks  open {row['open_s']:6.2f} s  p50 {row['retrieval_p50_ms']:7.1f} ms  "
              f"p95 {row['retrieval_p95_ms']:7.1f} ms  peak RSS {row['peak_rss_mb']:7.0f} MB  "
              f"disk {row['disk_mb']:8.1f} MB  built in {row['build_s']:.0f} s (peak RSS {build_peak})",
              flush=True)
    print(json.dumps(results[-1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
