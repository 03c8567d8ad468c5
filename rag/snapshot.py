"""Index snapshots: ``rag index export FILE`` and ``rag index import FILE --index DIR``.

A snapshot is a gzip tar holding ``snapshot.json`` (format, time, counts and the settings fingerprint:
embedder, chunker and its parameters), the manifest, the BM25 file, and Chroma's contents read through its
API (``chunks.jsonl``: id, text, stored metadata; ``embeddings.npy``), never its files, which an open client
may not have flushed. It is written while no ingestion runs (the caller holds the index, or the server's
ingest lock), so the three parts agree. Import refuses a snapshot made with another embedder: its vectors
would not be comparable with the questions' vectors.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag.index import DocumentIndex

FORMAT = 1
_BATCH = 2000
_BM25_NAMES = ("bm25.npz", "bm25.json.gz")


class SnapshotError(ValueError):
    """A snapshot that cannot be restored here (another embedder, a damaged file, an index in the way)."""


@dataclass(frozen=True)
class SnapshotInfo:
    format: int
    created_at: float
    fingerprint: dict[str, object]
    chunks: int
    documents: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created_at))
        return (f"snapshot of {when}: {self.documents} documents, {self.chunks} chunks, "
                f"embedder {self.fingerprint.get('embedder')}, chunker {self.fingerprint.get('chunker')}")


def fingerprint(settings, embedder_id: str) -> dict[str, object]:
    """What the stored vectors and chunks depend on."""
    return {"embedder": embedder_id, "chunker": settings.chunker, "chunk_max_tokens": settings.chunk_max_tokens,
            "collection": settings.collection}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def export_snapshot(index: DocumentIndex, index_dir: Path, print_: dict[str, object], out: Path) -> SnapshotInfo:
    """Writes ``out`` from ``index``; the caller makes sure no ingestion runs meanwhile."""
    if not isinstance(index, DocumentIndex):
        raise SnapshotError("'rag index export' reads a local index (RAG_BACKEND=local); exporting an index kept "
                            "on Milvus is not built yet (issue 36)")
    manifest = index_dir / "manifest.json"
    manifest_bytes = manifest.read_bytes() if manifest.exists() else b'{"version": 1, "files": {}}'
    documents = len(json.loads(manifest_bytes)["files"])
    index.save()  # the BM25 file as it is in memory now
    ids = sorted(index.store.ids())
    lines, vectors = [], []
    for start in range(0, len(ids), _BATCH):
        got = index.store.collection.get(ids=ids[start:start + _BATCH],
                                         include=["documents", "metadatas", "embeddings"])
        for cid, doc, meta, vector in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                          strict=True):
            lines.append(json.dumps({"id": cid, "text": doc, "metadata": meta}, ensure_ascii=False))
            vectors.append(np.asarray(vector, dtype=np.float32))
    matrix = np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
    info = SnapshotInfo(FORMAT, time.time(), print_, len(ids), documents)
    buffer = io.BytesIO()
    np.save(buffer, matrix, allow_pickle=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with tarfile.open(tmp, "w:gz") as tar:
        _add(tar, "snapshot.json", json.dumps(asdict(info), indent=1).encode())
        _add(tar, "manifest.json", manifest_bytes)
        bm25 = index.bm25.path
        if bm25 is not None and bm25.exists():
            _add(tar, bm25.name, bm25.read_bytes())
        _add(tar, "chunks.jsonl", "\n".join(lines).encode("utf-8"))
        _add(tar, "embeddings.npy", buffer.getvalue())
    tmp.replace(out)  # a reader never sees a half-written snapshot
    return info


def read_info(snapshot: Path) -> SnapshotInfo:
    try:
        with tarfile.open(snapshot, "r:gz") as tar:
            return SnapshotInfo(**json.loads(tar.extractfile("snapshot.json").read()))
    except (OSError, tarfile.TarError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"{snapshot}: not a readable index snapshot ({type(exc).__name__}: {exc})") from exc


def import_snapshot(snapshot: Path, index_dir: Path, print_: dict[str, object], collection: str = "documents",
                    chroma_url: str | None = None, headings: tuple[float, int] = (0.0, 0),
                    embed_headings: Callable[[list[str]], np.ndarray] | None = None) -> SnapshotInfo:
    """Restores ``snapshot`` into an empty ``index_dir``; refuses another embedder or an existing index. The
    window units are derived again with ``headings`` (the settings' heading weight and terms), the headings'
    vectors made by ``embed_headings`` (the index's dense embedder)."""
    info = read_info(snapshot)
    if info.format != FORMAT:
        raise SnapshotError(f"{snapshot}: snapshot format {info.format}, this version reads {FORMAT}")
    if info.fingerprint.get("embedder") != print_.get("embedder"):
        raise SnapshotError(
            f"{snapshot} was made with the embedder {info.fingerprint.get('embedder')!r}, but this index uses "
            f"{print_.get('embedder')!r} (RAG_DENSE_MODEL): its vectors would not match the questions'. "
            "Configure the same embedder, or ingest the documents again.")
    if (index_dir / "manifest.json").exists():
        raise SnapshotError(f"{index_dir} already holds an index: import into a new folder")
    notes = [f"{k}: snapshot {v!r}, settings {print_.get(k)!r}" for k, v in info.fingerprint.items()
             if k != "embedder" and v != print_.get(k)]
    with tarfile.open(snapshot, "r:gz") as tar:
        parts = {name: tar.extractfile(name).read() for name in ("manifest.json", "chunks.jsonl", "embeddings.npy")}
        # The BM25 file as the exporting version wrote it: "bm25.json.gz" (the first format) is converted on open.
        bm25 = next(((name, tar.extractfile(name).read()) for name in _BM25_NAMES if name in tar.getnames()), None)
    matrix = np.load(io.BytesIO(parts["embeddings.npy"]), allow_pickle=False)
    rows = [json.loads(line) for line in parts["chunks.jsonl"].decode("utf-8").splitlines() if line.strip()]
    if len(rows) != info.chunks or len(matrix) != len(rows):
        raise SnapshotError(f"{snapshot}: damaged ({len(rows)} chunks, {len(matrix)} vectors, {info.chunks} listed)")
    index_dir.mkdir(parents=True, exist_ok=True)
    index = DocumentIndex(index_dir, collection, chroma_url, heading_weight=headings[0], heading_terms=headings[1])
    index.embed_headings = embed_headings
    index.renew_generation()  # written to the store directly below
    for start in range(0, len(rows), _BATCH):
        part = rows[start:start + _BATCH]
        index.store.collection.upsert(ids=[r["id"] for r in part], documents=[r["text"] for r in part],
                                      metadatas=[r["metadata"] for r in part],
                                      embeddings=matrix[start:start + _BATCH].tolist())
    index.record_vector_model(str(info.fingerprint.get("embedder")))
    index.rebuild_windows()  # derived from the stored chunks and vectors
    if bm25 is not None:
        (index_dir / bm25[0]).write_bytes(bm25[1])
    tmp = index_dir / "manifest.tmp"
    tmp.write_bytes(parts["manifest.json"])  # last: a manifest never names chunks the index lacks
    tmp.replace(index_dir / "manifest.json")
    return SnapshotInfo(info.format, info.created_at, info.fingerprint, info.chunks, info.documents, notes)
