"""Moving an index: ``rag index migrate --to milvus --uri URI`` copies a local index into Milvus (issue 36 item 4).

What is copied is what the local engine stored, read through Chroma's API (the store of record, as
``rag.snapshot`` reads it): each chunk's text and metadata, its vector and its window unit's vector (so nothing is
embedded again, not even a section heading), then the manifest. BM25 terms are not copied: Milvus makes its own
from the same ``rag.analysis`` terms (``rag.milvus``). The local index is only read, so a failure half-way leaves it
as it was.

Resumable and idempotent: the chunks Milvus already holds are skipped (a row is written whole or not at all), so
a second run, or a run after a failure, adds each chunk once. The target then mirrors the source: chunks in the
Milvus collection that the local index does not hold and the manifest does not own (a document removed locally
since an earlier migration) are deleted, lest the next ingest's repair adopt them back.

The manifest goes last, once every chunk is in Milvus, to the folder that will serve the Milvus index: by default
the local index's own folder (then ``RAG_BACKEND=milvus`` on that folder serves the copy; the local files stay as
they were, a fallback); a folder that holds another index's manifest is refused.

>>> migrate_to_milvus(DocumentIndex(Path(".rag-index")), MilvusBackend("./milvus.db"), Path(".rag-index")).summary()
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.journal import JOURNAL_FILE
from ingest.manifest import Manifest
from rag.index import DocumentIndex
from rag.milvus import MilvusBackend
from rag.types import Chunk

MANIFEST_FILE = "manifest.json"
_BATCH = 1000  # chunks per copy step, whole documents each (a window unit derived again needs its neighbours)


class MigrationError(ValueError):
    """A migration that cannot start (an interrupted ingest in the source, another model or index in the target)."""


@dataclass(frozen=True)
class MigrationReport:
    """What a migration found and did; ``summary()`` for the CLI."""

    uri: str
    collection: str  # the Milvus collection
    documents: int  # manifest entries of the source
    chunks: int  # chunks the source holds
    added: int  # copied by this run
    present: int  # already in Milvus (an earlier run): skipped
    removed: int  # in Milvus only, owned by no manifest entry: deleted
    total: int  # chunks in the Milvus collection afterwards
    manifest: Path  # where the manifest was copied (or already was)
    derived_windows: int = 0  # chunks whose window vector the source lacked: derived from the copied vectors
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"migrated {self.documents} documents, {self.chunks} chunks to Milvus at {self.uri} "
                 f"(collection {self.collection}): {self.added} added, {self.present} already there, "
                 f"{self.removed} removed; Milvus holds {self.total} chunks",
                 f"manifest: {self.manifest}; seconds: {self.seconds:.1f}"]
        if self.derived_windows:
            lines.append(f"note: {self.derived_windows} chunks had no stored window vector; derived from the copied "
                         "vectors (without section-heading vectors)")
        return "\n".join(lines)


def migrate_to_milvus(source: DocumentIndex, target: MilvusBackend, target_dir: Path,
                      batch: int = _BATCH) -> MigrationReport:
    """Copy ``source`` (a local index) into ``target``, then its manifest into ``target_dir`` (see the module)."""
    started = time.perf_counter()
    if batch < 1:
        raise ValueError(f"batch must be > 0, got {batch}")
    source_manifest = source.index_dir / MANIFEST_FILE
    target_manifest = Path(target_dir) / MANIFEST_FILE
    manifest = _checked_source(source, source_manifest)
    _check_target(source, target, source_manifest, target_manifest)
    ids = sorted(source.store.ids())
    present = set(target.ids())
    todo = [cid for cid in ids if cid not in present]
    added = derived = 0
    for part in _by_document(todo, batch):
        chunks = source.store.get(part)
        vectors = source.store.vectors(part)
        windows = source.windows.vectors(part)
        members = [cid for cid in part if cid in chunks and cid in vectors]  # listed, then deleted meanwhile
        if not members:
            continue
        matrix = np.stack([vectors[cid] for cid in members])
        window_matrix = None
        if all(cid in windows for cid in members):
            window_matrix = np.stack([windows[cid] for cid in members])
        else:
            derived += len(members)
        target.add([chunks[cid] for cid in members], matrix, model_id=source.vector_model, windows=window_matrix)
        added += len(members)
    extra = sorted(present - set(ids) - manifest.chunk_ids())
    target.delete(extra)
    target.save()
    missing = set(ids) - set(target.ids())
    if missing:
        raise MigrationError(f"{len(missing)} chunks did not reach Milvus at {target.uri} (e.g. {min(missing)}); "
                             "run the migration again: it resumes")
    _copy_manifest(source_manifest, target_manifest)
    return MigrationReport(uri=target.uri, collection=target.name, documents=len(manifest), chunks=len(ids),
                           added=added, present=len(ids) - len(todo), removed=len(extra), total=target.count(),
                           manifest=target_manifest, derived_windows=derived,
                           seconds=time.perf_counter() - started)


def _checked_source(source: DocumentIndex, manifest_path: Path) -> Manifest:
    if source.remote:
        raise MigrationError("the source must be a local index folder (not a Chroma server)")
    if not manifest_path.exists():
        raise MigrationError(f"no index at {source.index_dir} to migrate (no {MANIFEST_FILE})")
    if (source.index_dir / JOURNAL_FILE).exists():
        raise MigrationError(f"an ingest of {source.index_dir} was interrupted: run 'rag index repair --index "
                             f"{source.index_dir}' (or the ingest again) first")
    manifest = Manifest(manifest_path)
    if manifest.unreadable:
        raise MigrationError(f"{manifest_path} is unreadable ({manifest.unreadable}): run 'rag index repair' first")
    if source.vector_model is None:
        raise MigrationError(f"{source.index_dir} does not record which model made its vectors: run 'rag index "
                             "repair' first")
    return manifest


def _check_target(source: DocumentIndex, target: MilvusBackend, source_manifest: Path, target_manifest: Path) -> None:
    stored = target.vector_model
    if stored is not None and stored != source.vector_model:
        raise MigrationError(f"the Milvus collection {target.name} at {target.uri} holds vectors of {stored}, the "
                             f"local index of {source.vector_model}: they cannot be searched together")
    if target_manifest.resolve() == source_manifest.resolve() or not target_manifest.exists():
        return
    if _manifest_files(target_manifest) != _manifest_files(source_manifest):
        raise MigrationError(f"{target_manifest.parent} already holds another index's manifest: pick an empty "
                             "folder for the Milvus index")


def _manifest_files(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None


def _copy_manifest(source: Path, target: Path) -> None:
    if target.resolve() == source.resolve():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(source.read_bytes())
    os.replace(tmp, target)


def _by_document(ids: list[str], size: int) -> list[list[str]]:
    """``ids`` in batches of about ``size``, a document's chunks never split between two."""
    by_doc: dict[str, list[str]] = defaultdict(list)
    for cid in ids:
        by_doc[Chunk.document_id(cid)].append(cid)
    out: list[list[str]] = [[]]
    for doc in by_doc.values():
        if out[-1] and len(out[-1]) + len(doc) > size:
            out.append([])
        out[-1].extend(doc)
    return [part for part in out if part]
