"""bench.scale builds its index through the product's index code and measures it in a fresh process."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.scale import CHUNKS_PER_DOC, SyntheticCorpus, peak_rss_mb, pseudo_words
from rag.index import DocumentIndex

ROOT = Path(__file__).resolve().parent.parent


def test_synthetic_corpus_is_zipfian_and_reproducible():
    words = pseudo_words(500)
    assert len(set(words)) == 500
    a, b = SyntheticCorpus(seed=1), SyntheticCorpus(seed=1)
    chunks, vectors = a.document(0)
    assert [c.text for c in chunks] == [c.text for c in b.document(0)[0]]
    assert len(chunks) == CHUNKS_PER_DOC and vectors.shape == (CHUNKS_PER_DOC, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    counts: dict[str, int] = {}
    for _ in range(300):
        for word in a.sentence().rstrip(".").split():
            counts[word] = counts.get(word, 0) + 1
    ranked = sorted(counts.values(), reverse=True)
    assert ranked[0] > 20 * ranked[len(ranked) // 2]  # a few words are very common, most are rare


def test_bench_scale_builds_a_real_index_and_prints_its_figures(tmp_path):
    run = subprocess.run([sys.executable, "-m", "bench.scale", "--chunks", "400", "--queries", "20",
                          "--dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["chunks"] == 400
    assert {"open_s", "retrieval_p50_ms", "retrieval_p95_ms", "peak_rss_mb", "disk_mb",
            "build_peak_rss_mb"} <= set(figures)
    built = json.loads((tmp_path / "chunks-400" / "built.json").read_text())
    assert built["build_peak_rss_mb"] == figures["build_peak_rss_mb"] > 0
    phases = built["build_phases"]
    assert {"add", "add: chroma sentences", "add: exact matrices", "save",
            "save: bm25 + impacts"} <= set(phases)
    assert max(row["peak_rss_mb"] for row in phases.values()) <= built["build_peak_rss_mb"] + 1
    index = DocumentIndex(tmp_path / "chunks-400")  # the product opens what the benchmark built
    assert index.store.count() == 400 and len(index.bm25) == 400
    first = SyntheticCorpus().document(0)[0][0]
    hits = index.search_bm25(index.analyzer("en").terms(first.text), 5)
    assert hits[0][0] == first.id


def test_peak_memory_is_the_measuring_process_own():
    """ru_maxrss crosses exec from the process that started the child (Python starts it with vfork,
    sharing the parent's memory), so a measurement started by the builder reported the build's peak;
    VmHWM is the child's own."""
    held = np.ones(600 * 2**20, dtype=np.uint8)  # touched: this process's peak is 600 MB above a child's
    code = ("import resource; from bench.scale import peak_rss_mb; "
            "print(peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    own, maxrss = map(float, run.stdout.split())
    assert held.sum() == held.size and peak_rss_mb() > 600
    assert own < 150, f"the child's own peak {own:.0f} MB (its ru_maxrss: {maxrss:.0f} MB)"
