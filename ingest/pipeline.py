"""Folder ingestion: plan (new / changed / unchanged / removed), parse, chunk, embed, index.

Incremental and idempotent: a manifest records each file's content hash and ingestion config;
chunk ids are deterministic, so re-running yields the same ids, and a run killed half-way is
repaired by the next (orphaned chunks are dropped, unfinished files redone).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ingest.chunkers import Chunker, make_chunker
from ingest.embedding import DistinctTextEmbedder
from ingest.errors import IndexWriteError, IngestError
from ingest.journal import JOURNAL_FILE, IngestJournal
from ingest.manifest import UNKNOWN_PREFIX, FileEntry, Manifest, config_key, file_hash
from ingest.ocr_boxes import chunk_ocr_fields
from ingest.images import IMAGE_SUFFIXES
from ingest.office import OFFICE_SUFFIXES
from ingest.parsing import ParseAhead, ParsedFile, Parsers
from ingest.progress import IngestProgress, ProgressCounter, count_pages
from ingest.repair import RepairReport, repair_index
from ingest.scan import ScannedPage
from rag.analysis import SEGMENTATION_VERSION, detect_language
from rag.embedder import Embedder, SentenceTransformerEmbedder, dense_embedder
from rag.backend import BackendUnavailable, RetrievalBackend, open_backend
from rag.settings import Settings
from rag.types import Chunk, ChunkMetadata, Element

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = frozenset({".pdf"}) | OFFICE_SUFFIXES | IMAGE_SUFFIXES
_SAVE_EVERY_S = 30.0


@dataclass
class Failure:
    source: str
    reason: str
    detail: str = ""


@dataclass
class IngestReport:
    ingested: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)  # ingested, but something was left out
    pages: int = 0
    chunks: int = 0
    repair: RepairReport = field(default_factory=RepairReport)  # what the run's repair found and fixed first
    pages_text_layer: int = 0  # pages of the ingested PDFs read from their text layer
    ocr_confidences: list[float] = field(default_factory=list)  # one per page read by OCR
    low_confidence: list[str] = field(default_factory=list)  # "scan.pdf p.3 (41)": OCR'd pages to check
    pages_blank: list[str] = field(default_factory=list)  # "scan.pdf p.2 (one colour)": skipped, empty
    pages_ocr_failed: list[str] = field(default_factory=list)  # "scan.pdf p.4 (RuntimeError: …)": skipped
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    requested_texts: int = 0  # texts the index needed dense vectors for (chunks, window units' headings)
    embedded_texts: int = 0  # of those, embedded by the model: each distinct text once (ingest.embedding)

    @property
    def repaired_chunks(self) -> int:
        """Chunks of an interrupted run undone by this run's repair."""
        return self.repair.undone_chunks

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0

    @property
    def pages_ocr(self) -> int:
        return len(self.ocr_confidences)

    def summary(self) -> str:
        lines = [f"files: {len(self.ingested)} ingested, {len(self.unchanged)} unchanged, "
                 f"{len(self.removed)} removed, {len(self.skipped)} skipped (unsupported type), "
                 f"{len(self.failed)} failed",
                 f"pages: {self.pages}, chunks: {self.chunks}, seconds: {self.seconds:.1f}, "
                 f"pages/s: {self.pages_per_second:.1f}"]
        if self.pages_ocr:
            mean = sum(self.ocr_confidences) / self.pages_ocr
            lines.append(f"ocr: {self.pages_text_layer} pages read from the text layer, {self.pages_ocr} by OCR "
                         f"(mean confidence {mean:.0f}), {len(self.low_confidence)} low-confidence"
                         + (": " + ", ".join(self.low_confidence) if self.low_confidence else ""))
        if self.pages_blank or self.pages_ocr_failed:
            lines.append(f"pages skipped: {len(self.pages_blank)} blank"
                         + (": " + ", ".join(self.pages_blank) if self.pages_blank else "")
                         + f"; {len(self.pages_ocr_failed)} OCR failed"
                         + (": " + ", ".join(self.pages_ocr_failed) if self.pages_ocr_failed else ""))
        if self.stage_seconds:
            lines.append("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.stage_seconds.items()))
        if self.requested_texts:
            lines.append(f"embedded: {self.embedded_texts} distinct texts of {self.requested_texts}")
        lines.extend(self.repair.lines())
        lines.extend(f"FAILED {f.source}: {f.reason}" + (f" ({f.detail})" if f.detail else "") for f in self.failed)
        lines.extend(f"WARNING {w.source}: {w.reason}" for w in self.warnings)
        return "\n".join(lines)


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    source: str
    key: str
    content_hash: str


@dataclass
class Plan:
    to_ingest: list[PlannedFile] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    to_remove: list[str] = field(default_factory=list)  # manifest keys
    skipped: list[str] = field(default_factory=list)  # unsupported file types
    outside: list[str] = field(default_factory=list)  # links out of a confined folder: refused


def discover(root: Path) -> list[Path]:
    """Supported files below ``root`` (or ``root`` itself), hidden files and folders skipped."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


class FolderIngestor:
    """Ingests a folder (or one file) into the index ``settings.backend`` names (``rag.backend.open_backend``).
    The manifest and the journal are kept in ``settings.index_dir`` whatever the backend (with Milvus too: that
    folder, not the engine, says which files were ingested; see issue 36 for a manifest shared by several servers).

    >>> FolderIngestor(Settings()).run(Path("data")).summary()
    """

    def __init__(self, settings: Settings, index: RetrievalBackend | None = None,
                 embedder: SentenceTransformerEmbedder | None = None, dense: Embedder | None = None) -> None:
        """``dense``: the model of the index vectors (default: the one ``settings.dense_model`` names)."""
        self.settings = settings
        self.embedder = embedder or SentenceTransformerEmbedder(settings.embedder_model,
                                                                batch_size=settings.embed_batch_size,
                                                                runtime=settings.embedder_runtime)
        # The judge embedder counts chunk tokens and finds semantic breakpoints; the dense one makes the vectors.
        self.dense = dense or dense_embedder(settings.dense_model, self.embedder, settings.embed_batch_size,
                                              settings.embed_runtime)
        # Everything the ingest embeds goes through these: a text repeated across chunks and files once a run.
        self.distinct = DistinctTextEmbedder(self.dense)
        self._judge_distinct = DistinctTextEmbedder(self.embedder)
        self.index = index or open_backend(settings)
        if self.index.embed_headings is None:  # window units carry their section heading's vector
            self.index.embed_headings = self.distinct.embed
        self.manifest = Manifest(Path(settings.index_dir) / "manifest.json")
        self.journal = IngestJournal(self.manifest.path.with_name(JOURNAL_FILE))
        self.parsers = Parsers(settings)
        self.scanner, self.pdf, self.images, self.office = (self.parsers.scanner, self.parsers.pdf,
                                                            self.parsers.images, self.parsers.office)
        self._chunker: Chunker | None = None
        self._progress = False
        self.stage_seconds: dict[str, float] = {}

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            settings = self.settings
            # Text past the embedder's limit would be silently cut when embedding: never go above it.
            limit = self.embedder.max_seq_length - 2  # [CLS] and [SEP]
            if settings.chunk_max_tokens > limit:
                log.warning("chunk_max_tokens %d is above what %s embeds (%d); using %d",
                            settings.chunk_max_tokens, self.embedder.model_id, limit, limit)
                settings = settings.with_overrides(chunk_max_tokens=limit)
            self._chunker = make_chunker(settings, self.embedder.count_tokens, self._judge_distinct.embed)
        return self._chunker

    def config_parts(self, suffix: str) -> dict[str, object]:
        return {"parser": self.parsers.version(suffix), "chunker": self.chunker.name,
                "chunker_params": self.chunker.params(),
                "embedder": self.dense.model_id, "segmentation": SEGMENTATION_VERSION, **self._heading_parts()}

    def _heading_parts(self) -> dict[str, object]:
        """The window units' heading settings, named only when set (so an index from before them is current
        when they are off)."""
        weight, terms = self.index.heading_weight, self.index.heading_terms
        return {"window_heading": [weight, terms]} if weight or terms else {}

    def plan(self, root: Path, confine: bool = False) -> Plan:
        """What to ingest, keep and remove. ``confine``: files that resolve outside ``root`` (symbolic links
        out of it) are refused, for a caller that may read only that folder (the server's hand-over)."""
        root = root.resolve()
        base = root if root.is_dir() else root.parent
        plan = Plan()
        seen: set[str] = set()
        for path in discover(root):
            key = str(path.resolve())
            source = str(path.relative_to(base))
            if confine and not Path(key).is_relative_to(base):
                plan.outside.append(source)
                continue
            seen.add(key)
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                plan.skipped.append(source)
                continue
            entry = self.manifest.get(key)
            digest = file_hash(path)
            if (entry is not None and entry.content_hash == digest
                    and entry.config_key == config_key(self.config_parts(path.suffix.lower()))):
                plan.unchanged.append(source)
            else:
                plan.to_ingest.append(PlannedFile(path, source, key, digest))
        if root.is_dir():  # a single file never implies that its neighbours were removed
            prefix = str(root) + "/"
            plan.to_remove = [k for k in self.manifest.keys() if k not in seen and k.startswith(prefix)]
        return plan

    def run(self, root: Path, dry_run: bool = False, progress: bool = False, confine: bool = False,
            on_progress: Callable[[IngestProgress], None] | None = None) -> IngestReport:
        """Ingest ``root``; ``progress`` shows bars for pages (with files, pages/s, time left) and embedding
        batches (on stderr); ``on_progress`` gets an ``IngestProgress`` as each file starts and once all
        are done; ``confine``: see ``plan``."""
        if not root.exists():
            raise FileNotFoundError(f"no such file or folder: {root}")
        self.distinct.reset()
        self._judge_distinct.reset()
        try:
            return self._run(root, dry_run, progress, confine, on_progress)
        finally:  # the run's vectors are not kept between runs
            self.distinct.reset()
            self._judge_distinct.reset()

    def _run(self, root: Path, dry_run: bool, progress: bool, confine: bool,
             on_progress: Callable[[IngestProgress], None] | None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        if not dry_run:
            self.stage_seconds = {}
            report.repair = self.repair()
        plan = self.plan(root, confine=confine)
        report.unchanged = plan.unchanged
        report.skipped = plan.skipped
        report.failed.extend(Failure(s, "outside the folder", "a link to a file outside the folder asked for")
                             for s in plan.outside)
        if dry_run:
            report.ingested = [f.source for f in plan.to_ingest]
            report.removed = [e.source for e in map(self.manifest.get, plan.to_remove) if e is not None]
            return report
        for key in plan.to_remove:
            entry = self.remove(key)
            if entry is not None:  # None: removed meanwhile by another request
                report.removed.append(entry.source)
        last_save = time.monotonic()
        self._progress = progress
        watched = progress or on_progress is not None  # pages are counted ahead only for someone to see
        counter = ProgressCounter([count_pages(f.path) if watched else None for f in plan.to_ingest])
        bar = tqdm(total=counter.pages_total, desc="pages", unit="page", disable=not progress)

        def show(current: str | None) -> None:
            snapshot = counter.snapshot(current)
            bar.set_postfix_str(f"{snapshot.files_done}/{snapshot.files_total} files"
                                + (f" {current[-40:]}" if current else ""))
            if on_progress is not None:
                on_progress(snapshot)

        # With RAG_PARSE_WORKERS > 0 the next files are parsed in a worker process while this one is chunked,
        # embedded and indexed (ingest/parsing.py); by default each is parsed here in turn.
        ahead = ParseAhead(self.parsers, self.settings, [(f.path, f.source) for f in plan.to_ingest],
                           workers=self.settings.parse_workers)
        try:
            for number, (planned, parsed) in enumerate(zip(plan.to_ingest, ahead, strict=True)):
                show(planned.source)
                pages_read = 0
                try:
                    if isinstance(parsed, Exception):
                        raise parsed
                    self.stage_seconds["parse"] = self.stage_seconds.get("parse", 0.0) + parsed.seconds
                    entry = self._index_file(planned, parsed)
                    pages_read = entry.pages
                except IngestError as exc:
                    report.failed.append(Failure(planned.source, exc.reason, exc.detail))
                    continue
                except BackendUnavailable:  # every later file would fail the same way; the journal has this one
                    raise
                except OSError as exc:
                    if exc.errno in _WRITE_ERRORS:  # every later file would fail the same way: stop here
                        raise _write_error(self.settings.index_dir, exc) from exc
                    log.exception("unexpected error ingesting %s", planned.source)
                    report.failed.append(Failure(planned.source, "unexpected error", f"{type(exc).__name__}: {exc}"))
                    continue
                except Exception as exc:  # noqa: BLE001 - one bad file never stops the folder
                    log.exception("unexpected error ingesting %s", planned.source)
                    report.failed.append(Failure(planned.source, "unexpected error", f"{type(exc).__name__}: {exc}"))
                    continue
                finally:
                    added = counter.file_done(number, pages_read)
                    if bar.total != counter.pages_total:  # an Office file's pages, known now
                        bar.total = counter.pages_total
                        bar.refresh()
                    bar.update(added)
                report.ingested.append(planned.source)
                report.warnings.extend(Failure(planned.source, w) for w in parsed.warnings)
                report.pages += entry.pages
                self._count_pages(report, planned, parsed)
                report.chunks += len(entry.chunk_ids)
                if time.monotonic() - last_save > _SAVE_EVERY_S:
                    self.save(vectors=False)  # the vector files (the largest) once, at the end
                    last_save = time.monotonic()
        finally:
            ahead.close()
        if ahead.waited:
            self.stage_seconds["parse_wait"] = round(ahead.waited, 3)
        show(None)
        bar.close()
        started_save = time.perf_counter()
        self.save()
        self._timed("save", started_save)
        report.seconds = time.perf_counter() - started
        report.stage_seconds = {k: round(v, 3) for k, v in self.stage_seconds.items()}
        report.requested_texts, report.embedded_texts = self.distinct.asked, self.distinct.embedded
        return report

    def _timed(self, stage: str, started: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - started

    def _parse(self, planned: PlannedFile) -> ParsedFile:
        """Elements, warnings and OCR'd pages of one file, parsed here."""
        parsed = self.parsers.parse(planned.path, planned.source)
        self.stage_seconds["parse"] = self.stage_seconds.get("parse", 0.0) + parsed.seconds
        return parsed

    def _count_pages(self, report: IngestReport, planned: PlannedFile, parsed: ParsedFile) -> None:
        if planned.path.suffix.lower() == ".pdf":
            report.pages_text_layer += len({e.page for e in parsed.elements if e.page not in parsed.scanned})
        for number, page in sorted(parsed.scanned.items()):
            report.ocr_confidences.append(page.ocr.confidence)
            if page.ocr.confidence < self.settings.ocr_low_confidence:
                report.low_confidence.append(f"{planned.source} p.{number} ({page.ocr.confidence:.0f})")
        for skipped in parsed.skipped:
            listed = report.pages_blank if skipped.blank else report.pages_ocr_failed
            listed.append(f"{planned.source} p.{skipped.number} ({skipped.reason})")

    def _index_file(self, planned: PlannedFile, parsed: ParsedFile) -> FileEntry:
        stat = planned.path.stat()
        config = config_key(self.config_parts(planned.path.suffix.lower()))
        return self.index_documents([(planned, parsed.elements)], config, mtime=stat.st_mtime,
                                    scanned={planned.key: parsed.scanned})[0]

    def index_documents(self, documents: list[tuple[PlannedFile, list[Element]]], config: str,
                        mtime: float | None = None,
                        scanned: dict[str, dict[int, ScannedPage]] | None = None) -> list[FileEntry]:
        """Chunk, embed (in shared batches) and index already-parsed documents; update the manifest."""
        all_chunks: list[Chunk] = []
        stale: list[str] = []  # a changed file's chunks that its new version no longer has
        entries: list[FileEntry] = []
        for planned, elements in documents:
            old = self._previous(planned.key)
            # A file keeps its id across versions; a new file gets a random one, which no one can work out from
            # its path (the API serves a document's file by id).
            doc_id = old.doc_id if old is not None else secrets.token_hex(6)
            started = time.perf_counter()
            chunks = self._chunks(elements, planned, doc_id, mtime, (scanned or {}).get(planned.key, {}), config)
            self._timed("chunk", started)
            if old is not None:
                new_ids = {c.id for c in chunks}
                stale.extend(cid for cid in old.chunk_ids if cid not in new_ids)
            all_chunks.extend(chunks)
            entries.append(FileEntry(source=planned.source, doc_id=doc_id, content_hash=planned.content_hash,
                                     config_key=config, chunk_ids=[c.id for c in chunks],
                                     pages=max((e.page or 0 for e in elements), default=0),
                                     mtime=mtime or 0.0,
                                     ingested_at=chunks[0].metadata.ingested_at or 0.0 if chunks else time.time()))
        started = time.perf_counter()
        embeddings = self._embed([c.text for c in all_chunks])
        self._timed("embed", started)
        started = time.perf_counter()
        for (planned, _), entry in zip(documents, entries, strict=True):  # on disk before any chunk is
            self.journal.writing(planned.key, entry, [c for c in stale if Chunk.document_id(c) == entry.doc_id])
        new_ids = [c.id for c in all_chunks]
        with self.index.lock:  # one change for readers: the old version goes as the new one arrives
            try:
                # Added before the old version's chunks go: a run killed in between leaves the old version
                # whole, or the new one whole (``ingest.repair`` keeps a write whose chunks are all stored).
                self.index.add(all_chunks, embeddings, model_id=self.dense.model_id)
                self.index.delete(stale)
            except BaseException:
                owned = self.manifest.chunk_ids()
                try:  # nothing half-written stays for a later save to leave unowned
                    self.index.delete([cid for cid in new_ids if cid not in owned])
                except BackendUnavailable as exc:  # the journal still names them for the next repair
                    log.warning("could not undo a failed write (%s); the next run's repair undoes it", exc)
                except Exception:  # noqa: BLE001 - the journal still names them for the next repair
                    log.exception("could not undo a failed write; the next run's repair undoes it")
                raise
        self._timed("index", started)
        for (planned, _), entry in zip(documents, entries, strict=True):
            self._drop_placeholder(entry.doc_id, planned.key)
            self.manifest.put(planned.key, entry)
        return entries

    def _previous(self, key: str) -> FileEntry | None:
        """The manifest entry of ``key``, or one that a repair rebuilt for the same file from chunks made
        before chunks carried their file's path (keyed ``unknown:<doc_id>``, the id being the path's sha1)."""
        entry = self.manifest.get(key)
        if entry is not None:
            return entry
        legacy = self.manifest.get(UNKNOWN_PREFIX + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12])
        return legacy

    def _drop_placeholder(self, doc_id: str, key: str) -> None:
        placeholder = UNKNOWN_PREFIX + doc_id
        if placeholder != key:
            self.manifest.pop(placeholder)

    def remove(self, key: str) -> FileEntry | None:
        """Delete a file's chunks and entry (journalled first: a kill half-way is finished by the next repair);
        the caller saves. None when there is no such entry."""
        entry = self.manifest.get(key)
        if entry is None:
            return None
        self.journal.removing(key, entry)
        self.index.delete(entry.chunk_ids)
        return self.manifest.pop(key)

    def _embed(self, texts: list[str]) -> np.ndarray:
        step = self.settings.embed_batch_size * 8
        if len(texts) <= step or not self._progress:
            return self.distinct.embed(texts)
        parts = [self.distinct.embed(texts[i:i + step])
                 for i in tqdm(range(0, len(texts), step), desc="embedding", unit="batch", leave=False)]
        return np.concatenate(parts)

    def _chunks(self, elements: list[Element], planned: PlannedFile, doc_id: str,
                mtime: float | None, scanned: dict[int, ScannedPage] | None = None,
                config: str | None = None) -> list[Chunk]:
        language = detect_language(" ".join(e.text for e in elements[:20])[:5000])
        now = time.time()
        params = json.dumps(self.chunker.params(), sort_keys=True)
        chunks = []
        for ordinal, draft in enumerate(self.chunker.split(elements)):
            meta = ChunkMetadata(
                source=planned.source, page=draft.page, page_end=draft.page_end, element_type=draft.element_type,
                section=draft.section, table_id=draft.table_id, table_json=draft.table_json, doc_id=doc_id,
                doc_hash=planned.content_hash, file_path=planned.key, config_key=config, chunker=self.chunker.name, chunker_params=params, language=language,
                file_mtime=mtime, ingested_at=now, ordinal=ordinal, window=draft.window, lead_in=draft.lead_in,
                **chunk_ocr_fields(draft.text, draft.page, draft.page_end, scanned or {}))
            chunks.append(Chunk(Chunk.make_id(doc_id, ordinal, draft.text), draft.text, meta))
        return chunks

    def repair(self) -> RepairReport:
        """Undo what an interrupted run began and bring every store in step with the manifest, without deleting
        a chunk of a document that no one removed (``ingest.repair``)."""
        try:
            return repair_index(self)
        except OSError as exc:
            if exc.errno in _WRITE_ERRORS:
                raise _write_error(self.settings.index_dir, exc) from exc
            raise

    def save(self, vectors: bool = True) -> None:
        # Index first, manifest second: a manifest never names chunks the index has not stored.
        try:
            self.index.save(vectors=vectors)
            self.manifest.save()
            self.journal.clear()  # every journalled write is in the saved manifest now
        except OSError as exc:
            if exc.errno in _WRITE_ERRORS:
                raise _write_error(self.settings.index_dir, exc) from exc
            raise


_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def _write_error(index_dir: Path, exc: OSError) -> IndexWriteError:
    what = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "it cannot be written"
    return IndexWriteError(exc.errno, f"could not write the index at {index_dir}: {what} ({exc.strerror or exc}). "
                                      "Nothing of this run was recorded; the index answers as after the last "
                                      "completed run. Free space (or fix the permissions) and run the ingest again")
