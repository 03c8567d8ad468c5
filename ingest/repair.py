"""Index repair: finish or undo what an interrupted run began, and bring every store in step with the manifest,
without ever deleting a chunk of a document that no one removed.

Run before every ingest, at every server start and by ``rag index repair``. In order:

1. An unreadable chunk store (``chunks.sqlite``) or Chroma folder is moved aside and filled again from the other.
2. The journal of an unfinished run (``ingest.journal``): a write whose new chunks are all in Chroma is finished
   (its manifest entry recorded, the old version's chunks deleted); one that is not is undone (only the chunks it
   names that no manifest entry owns). A journalled removal is finished.
3. Chunks that no manifest entry owns and no journal names are adopted: their entries are rebuilt from the
   chunks' own metadata (file path, content hash, ingestion config). Only ids that an older copy of Chroma holds
   and the chunk store (in step with the index) does not are dropped: they belong to documents removed since.
4. An entry whose chunks no store holds any more is read again from its file when the file is there; otherwise
   it keeps the chunks that remain (an entry with none left goes).
5. Chunks the chunk store holds and Chroma lacks are embedded again; the derived files (both BM25 sides, the
   window vectors, the exact search's matrices, ``vectors.json``) are derived again where they disagree.

A local index only: on a Chroma server (other clients write to it) steps 1 and 5's re-embedding are skipped. On
another engine (``rag.milvus``: one row holds a chunk, its window unit and its terms, nothing is derived in local
files) steps 2 to 4 run on its list of ids (``RetrievalBackend.ids``), and steps 1 and 5 have nothing to do.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.manifest import UNKNOWN_PREFIX, FileEntry, config_key, file_hash
from rag.index import CHUNKS_FILE, REBUILDING_MARKER, DocumentIndex
from rag.types import Chunk

if TYPE_CHECKING:
    from ingest.pipeline import FolderIngestor

log = logging.getLogger(__name__)

_BATCH = 2000


@dataclass
class RepairReport:
    """What a repair found and did; ``lines()`` for the ingest summary, the server's log and the CLI."""

    undone_chunks: int = 0  # chunks of an interrupted write, deleted
    undone_files: list[str] = field(default_factory=list)
    finished_files: list[str] = field(default_factory=list)  # writes an interrupted run had completed: kept
    finished_removals: list[str] = field(default_factory=list)
    rebuilt_entries: list[str] = field(default_factory=list)  # manifest entries rebuilt from chunk metadata
    stale_removed: int = 0  # ids only an older copy of Chroma held (documents removed since)
    reingested: list[str] = field(default_factory=list)  # entries whose chunks were lost, read again from file
    trimmed: list[str] = field(default_factory=list)  # entries that lost chunks and whose file is gone
    dropped: list[str] = field(default_factory=list)  # entries left with no chunk and no file
    reembedded_chunks: int = 0
    derived: dict[str, int] = field(default_factory=dict)  # derived file or collection -> ids added or dropped
    exact_rebuilt: list[str] = field(default_factory=list)
    moved_aside: list[str] = field(default_factory=list)  # unreadable files kept under another name
    recorded_model: str | None = None
    failed: list[str] = field(default_factory=list)  # "source: why" for files that could not be read again

    @property
    def changed(self) -> bool:
        return any((self.undone_chunks, self.undone_files, self.finished_files, self.finished_removals,
                    self.rebuilt_entries, self.stale_removed, self.reingested, self.trimmed, self.dropped,
                    self.reembedded_chunks, self.derived, self.exact_rebuilt, self.moved_aside,
                    self.recorded_model))

    def lines(self) -> list[str]:
        out = [f"repaired: {name} was unreadable, kept as {aside}" for name, aside in
               (m.split(" -> ", 1) for m in self.moved_aside)]
        if self.undone_files:
            out.append(f"repaired: {self.undone_chunks} chunks of an interrupted run undone ("
                       + ", ".join(self.undone_files) + ")")
        if self.finished_files:
            out.append(f"repaired: {len(self.finished_files)} files an interrupted run had written, kept: "
                       + ", ".join(self.finished_files))
        if self.finished_removals:
            out.append("repaired: removals an interrupted run began, finished: " + ", ".join(self.finished_removals))
        if self.rebuilt_entries:
            out.append(f"repaired: {len(self.rebuilt_entries)} manifest entries rebuilt from the chunks' metadata: "
                       + ", ".join(self.rebuilt_entries))
        if self.stale_removed:
            out.append(f"repaired: {self.stale_removed} chunks of removed documents dropped from an older Chroma copy")
        if self.reingested:
            out.append(f"repaired: {len(self.reingested)} files whose chunks were lost, read again: "
                       + ", ".join(self.reingested))
        if self.trimmed or self.dropped:
            out.append("repaired: chunks lost with no file to read them again: "
                       + ", ".join([f"{s} (kept what remains)" for s in self.trimmed]
                                   + [f"{s} (nothing left, entry removed)" for s in self.dropped]))
        if self.reembedded_chunks:
            out.append(f"repaired: {self.reembedded_chunks} chunks embedded again (Chroma lacked their vectors)")
        if self.derived:
            out.append("repaired: derived again from the chunks: "
                       + ", ".join(f"{name} ({n} ids)" for name, n in self.derived.items()))
        if self.exact_rebuilt:
            out.append("repaired: exact-search files rebuilt: " + ", ".join(self.exact_rebuilt))
        if self.recorded_model:
            out.append(f"repaired: vectors.json recorded ({self.recorded_model})")
        out.extend(f"repair could not read again {failure}" for failure in self.failed)
        return out


class _Listing:
    """The ids each store holds, listed once and again only after a step wrote (``stale``): listing a million
    Chroma ids takes seconds, and every ingest and server start runs the repair."""

    def __init__(self, index) -> None:
        self.index = index
        self.stale()

    def stale(self) -> None:
        self._chroma: set[str] | None = None
        self._windows: set[str] | None = None
        self._texts: set[str] | None = None

    @property
    def chroma(self) -> set[str]:
        """The store of record's ids: Chroma's, or another engine's (``RetrievalBackend.ids``)."""
        if self._chroma is None:
            self._chroma = set(self.index.store.ids() if _local(self.index) else self.index.ids())
        return self._chroma

    @property
    def windows(self) -> set[str]:
        """The window units' ids (on another engine, a chunk's row holds its window unit: the same ids)."""
        if self._windows is None:
            self._windows = set(self.index.windows.ids()) if _local(self.index) else self.chroma
        return self._windows

    @property
    def texts(self) -> set[str] | None:
        """The chunk store's ids (None: no chunk store, a Chroma server or another engine)."""
        if self._texts is None:
            store = self.index.chunk_store() if _local(self.index) else None
            if store is None:
                return None
            self._texts = set(store.ids())
        return self._texts

    @property
    def primary(self) -> set[str]:
        """What the stores of record hold: Chroma's ids and the chunk store's."""
        return self.chroma | (self.texts or set())


def _local(index) -> bool:
    """Whether ``index`` is the local engine, whose chunk store and derived files the repair also keeps in step."""
    return isinstance(index, DocumentIndex)


def repair_index(ingestor: FolderIngestor) -> RepairReport:
    """Repair the ingestor's index and manifest (see the module docstring); saves when anything changed."""
    report = RepairReport()
    index, manifest = ingestor.index, ingestor.manifest
    listed = _Listing(index)
    files = _local(index) and not index.remote  # a local folder: chunk store, Chroma folder, derived files
    if manifest.unreadable:
        _move_aside(manifest.path, report)
    if files:
        _check_chunk_store(ingestor, report)
        _check_chroma(ingestor, report, listed)
    _replay_journal(ingestor, report, listed)
    _adopt_orphans(ingestor, report, listed)
    _recover_lost(ingestor, report, listed)
    if files:
        _reembed(ingestor, report, listed)
        marker = Path(index.index_dir) / REBUILDING_MARKER
        marker.unlink(missing_ok=True)
    if _local(index):
        report.derived = index.resync_derived(listed.chroma, listed.windows)
    if report.derived:
        listed.stale()
    if files:
        _check_exact(ingestor, report, listed)
        _record_model(ingestor, report)
    if report.changed or ingestor.journal:
        ingestor.save()  # index first, then the manifest, then the journal goes
    if report.changed:
        for line in report.lines():
            log.warning("%s", line)
    return report


def _move_aside(path: Path, report: RepairReport) -> None:
    if not path.exists():
        return
    aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    report.moved_aside.append(f"{path.name} -> {aside.name}")


def _check_chunk_store(ingestor: FolderIngestor, report: RepairReport) -> None:
    index = ingestor.index
    path = Path(index.index_dir) / CHUNKS_FILE
    if index.chunk_store() is None and path.exists():
        _move_aside(path, report)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        index.reset_chunk_store()


def _check_chroma(ingestor: FolderIngestor, report: RepairReport, listed: _Listing) -> None:
    """A Chroma folder that cannot be opened is moved aside; the chunk store then refills a new one (step 5)."""
    index = ingestor.index
    try:
        listed.chroma, listed.windows  # noqa: B018 - listing them is the check
    except Exception as exc:  # noqa: BLE001 - whatever Chroma raises on a damaged folder
        folder = index.store.path
        if folder is None:
            raise
        log.warning("the Chroma store at %s cannot be read (%s: %s)", folder, type(exc).__name__, exc)
        _mark_rebuilding(index)
        index.close_chroma()
        _move_aside(Path(folder), report)
        index.renew_generation()
        listed.stale()


def _replay_journal(ingestor: FolderIngestor, report: RepairReport, listed: _Listing) -> None:
    records = ingestor.journal.records()
    if not records:
        return
    index, manifest = ingestor.index, ingestor.manifest
    stored, held = listed.chroma, listed.primary
    for record in records:
        entry = record.entry
        current = manifest.get(record.key)
        if record.action == "removing":
            index.delete(entry.chunk_ids)
            if current is not None and current.doc_id == entry.doc_id:
                manifest.pop(record.key)
            report.finished_removals.append(entry.source)
        elif set(entry.chunk_ids) <= stored:  # the whole new version reached the store of record: keep it
            index.delete([cid for cid in record.stale if cid not in entry.chunk_ids])
            manifest.pop(UNKNOWN_PREFIX + entry.doc_id)
            manifest.put(record.key, entry)
            report.finished_files.append(entry.source)
        else:
            owned = manifest.chunk_ids()
            undo = [cid for cid in entry.chunk_ids if cid not in owned]
            index.delete(undo)
            report.undone_chunks += sum(cid in held for cid in undo)
            report.undone_files.append(entry.source)
    listed.stale()


def _adopt_orphans(ingestor: FolderIngestor, report: RepairReport, listed: _Listing) -> None:
    index, manifest = ingestor.index, ingestor.manifest
    owned = manifest.chunk_ids()
    chroma = listed.chroma
    text_ids = listed.texts if listed.texts is not None else chroma
    stale: set[str] = set()
    if listed.texts is not None and not (Path(index.index_dir) / REBUILDING_MARKER).exists():
        stale = (chroma - text_ids) - owned  # in Chroma alone: an older copy's documents, removed since
        if stale:
            index.delete(sorted(stale))
            report.stale_removed = len(stale)
            listed.stale()
    orphans = sorted(((chroma - stale) | text_ids) - owned)
    if not orphans:
        return
    by_doc: dict[str, list[Chunk]] = defaultdict(list)
    for start in range(0, len(orphans), _BATCH):
        for chunk in index.get(orphans[start:start + _BATCH]).values():
            by_doc[chunk.metadata.doc_id or Chunk.document_id(chunk.id)].append(chunk)
    for doc_id, chunks in sorted(by_doc.items()):
        chunks.sort(key=lambda c: c.metadata.ordinal)
        entry = _entry_from(doc_id, chunks)
        key = chunks[0].metadata.file_path or UNKNOWN_PREFIX + doc_id
        existing = manifest.get(key)
        if existing is not None and existing.doc_id == doc_id:  # the entry lacked some of its own chunks
            entry = replace(existing, chunk_ids=list(dict.fromkeys(existing.chunk_ids + entry.chunk_ids)))
        elif existing is not None and any(cid in chroma or cid in text_ids for cid in existing.chunk_ids):
            key = UNKNOWN_PREFIX + doc_id  # another version of that path is indexed too: keep both, lose neither
        manifest.put(key, entry)
        report.rebuilt_entries.append(entry.source)


def _entry_from(doc_id: str, chunks: list[Chunk]) -> FileEntry:
    """A manifest entry from a document's chunks (sorted by ordinal)."""
    meta = chunks[0].metadata
    pages = max((c.metadata.page_end or c.metadata.page or 0 for c in chunks), default=0)
    return FileEntry(source=meta.source, doc_id=doc_id, content_hash=meta.doc_hash, config_key=meta.config_key or "",
                     chunk_ids=[c.id for c in chunks], pages=pages, mtime=meta.file_mtime or 0.0,
                     ingested_at=max((c.metadata.ingested_at or 0.0 for c in chunks), default=0.0))


def _recover_lost(ingestor: FolderIngestor, report: RepairReport, listed: _Listing) -> None:
    """Entries naming chunks that no store of record holds: read their file again, else keep what remains."""
    from ingest.pipeline import PlannedFile

    manifest = ingestor.manifest
    held = listed.primary
    for key, entry in manifest.files.items():
        kept = [cid for cid in entry.chunk_ids if cid in held]
        if len(kept) == len(entry.chunk_ids):
            continue
        path = Path(key)
        if not key.startswith(UNKNOWN_PREFIX) and path.is_file():
            try:
                planned = PlannedFile(path, entry.source, key, file_hash(path))
                ingestor._index_file(planned, ingestor._parse(planned))
                listed.stale()
                report.reingested.append(entry.source)
                continue
            except Exception as exc:  # noqa: BLE001 - one unreadable file never stops the repair
                log.exception("repair: could not read %s again", entry.source)
                report.failed.append(f"{entry.source}: {type(exc).__name__}: {exc}")
        if kept:
            manifest.put(key, replace(entry, chunk_ids=kept))
            report.trimmed.append(entry.source)
        else:
            manifest.pop(key)
            report.dropped.append(entry.source)


def _reembed(ingestor: FolderIngestor, report: RepairReport, listed: _Listing) -> None:
    """Chunks the chunk store holds and Chroma lacks (a lost or older Chroma folder): embedded again, a whole
    document at a time (a sentence's window vector needs its neighbours')."""
    if listed.texts is None:
        return
    owned = ingestor.manifest.chunk_ids()
    need = (owned & listed.texts) - listed.chroma
    if not need:
        return
    _mark_rebuilding(ingestor.index)
    docs = {Chunk.document_id(cid) for cid in need}
    by_doc: dict[str, list[str]] = defaultdict(list)
    for cid in sorted(owned):
        if Chunk.document_id(cid) in docs:
            by_doc[Chunk.document_id(cid)].append(cid)
    batch: list[str] = []
    for doc in sorted(by_doc):
        batch.extend(by_doc[doc])
        if len(batch) >= _BATCH:
            report.reembedded_chunks += _embed_again(ingestor, batch)
            batch = []
    if batch:
        report.reembedded_chunks += _embed_again(ingestor, batch)
    listed.stale()


def _mark_rebuilding(index) -> None:
    """While Chroma is refilled the chunk store is the only copy of the text: a run killed meanwhile must not copy
    the half-filled Chroma over it (``DocumentIndex._copy_chunks`` keeps it while the marker is there)."""
    (Path(index.index_dir) / REBUILDING_MARKER).write_text("chroma is being refilled from the chunk store\n")


def _embed_again(ingestor: FolderIngestor, ids: list[str]) -> int:
    chunks = sorted(ingestor.index.get(ids).values(), key=lambda c: (c.metadata.doc_id, c.metadata.ordinal))
    if not chunks:
        return 0
    vectors = ingestor.distinct.embed([c.text for c in chunks])
    ingestor.index.add(chunks, vectors, model_id=ingestor.dense.model_id)
    return len(chunks)


def _check_exact(ingestor: FolderIngestor, report: RepairReport, listed: _Listing) -> None:
    index = ingestor.index
    for exact, store, ids in ((index.exact, index.store, listed.chroma),
                              (index.exact_windows, index.windows, listed.windows)):
        try:
            cached = exact.cached_ids()
        except ValueError as exc:
            log.warning("%s", exc)
            cached = ([], "")
        if cached is None or set(cached[0]) == ids:
            continue  # none (the first search writes it), or in step
        exact.rebuild()
        report.exact_rebuilt.append(exact.cache.name if exact.cache else store.name)


def _record_model(ingestor: FolderIngestor, report: RepairReport) -> None:
    """A lost ``vectors.json`` is written again when the manifest shows the configured embedder made the
    vectors (an entry's ingestion config, which names the embedder, is the current one)."""
    index = ingestor.index
    if index.vector_model is not None or index.store.count() == 0:
        return
    current = {config_key(ingestor.config_parts(suffix)) for suffix in
               {Path(e.source).suffix.lower() for e in ingestor.manifest.files.values()}}
    if any(e.config_key in current for e in ingestor.manifest.files.values()):
        index.record_vector_model(ingestor.dense.model_id)
        report.recorded_model = ingestor.dense.model_id
