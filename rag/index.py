"""The document index: a Chroma store and a BM25 index kept consistent with each other.

Sentence-window chunks are also indexed at the window's granularity (issue 18): a BM25 index over each
sentence's window text and a second Chroma collection holding each sentence's window vector (ids and vectors
only: the text stays with the sentence), the normalised mean of the window's sentence vectors (derived, nothing
is embedded twice). A window hit stands for its
sentence, so answers still quote sentences while recall gains from terms spread over neighbouring ones.

A window unit also carries its chunk's section heading (a statute's article, a manual's section, an abstract's
title): its vector adds ``heading_weight`` times the heading's vector (each distinct heading embedded once per
batch, by ``embed_headings``, which the ingestion sets) and its BM25 terms hold the heading's terms
``heading_terms`` times. A sentence alone rarely names its document's topic; its window then does. The sentence
units stay as they are, for evidence and quotes.

A local index also keeps its chunks' text and metadata in ``chunks.sqlite`` (``rag.chunkstore``), so that a
question reads chunks and filters without opening Chroma (issue 17); Chroma is opened when something writes, or
reads vectors the exact search's files lack.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rag.analysis import ANALYSIS_VERSION, SUPPORTED_LANGUAGES, Analyzer
from rag.bm25 import BM25Index
from rag.chunkstore import ChunkStore
from rag.exact import SHORTLIST_ABOVE, ExactVectors
from rag.settings import Settings
from rag.types import Chunk
from rag.vectorstore import ChromaStore

log = logging.getLogger(__name__)

WINDOWS_SUFFIX = ".windows"  # the window vectors' Chroma collection: "<collection>.windows" (names have no dots)
CHUNKS_FILE = "chunks.sqlite"
REBUILDING_MARKER = "rebuilding-chroma"  # present while a repair refills Chroma from the chunk store
_COPY_BATCH = 2000


class DocumentIndex:
    """Adds, deletes and looks up chunks in both indexes; ``save()`` persists the BM25 side. The default
    ``rag.backend.RetrievalBackend``.

    Safe to query from several threads while one thread writes: ``lock`` serialises BM25 changes
    and searches (Chroma handles its own concurrency).
    """

    def __init__(self, index_dir: Path, collection: str = "documents", chroma_url: str | None = None,
                 chroma_dir: Path | None = None, shortlist_above: int = SHORTLIST_ABOVE,
                 heading_weight: float = 0.0, heading_terms: int = 0) -> None:
        self.index_dir = Path(index_dir)
        self.heading_weight, self.heading_terms = heading_weight, heading_terms
        # Embeds section headings for the window vectors (the ingestion's dense embedder); None: windows derived
        # without an embedder (an index opened for questions rebuilding an older one's windows) add no heading vector.
        self.embed_headings: Callable[[list[str]], np.ndarray] | None = None
        # Named collections keep their Chroma collection in the index folder's one Chroma store.
        self.store = ChromaStore(path=Path(chroma_dir) if chroma_dir else self.index_dir / "chroma",
                                 collection=collection, url=chroma_url)
        # Files found unreadable on open ("bm25.npz: ..."): searched as empty until ``rag index repair``
        # derives them again from the chunks (``ingest.repair``); never a reason to refuse every question.
        self.damaged: list[str] = []
        self.bm25 = self._open_bm25(self.index_dir / "bm25.npz")
        self.windows = self.store.sibling(collection + WINDOWS_SUFFIX)
        self.bm25_windows = self._open_bm25(self.index_dir / "bm25-windows.npz")
        self.remote = chroma_url is not None  # other clients of the server may write: no generation kept
        self._generation_path = self.index_dir / "generation"
        self.exact, self.exact_windows = (
            ExactVectors(store, self.index_dir / f"exact-{name}.npz", lambda: self.vector_model,
                         lambda: self.generation, shortlist_above)
            for store, name in ((self.store, collection), (self.windows, collection + WINDOWS_SUFFIX)))
        self._analyzers = {lang: Analyzer(lang, canonical=True) for lang in SUPPORTED_LANGUAGES}
        self.lock = threading.RLock()
        self._vectors_path = self.index_dir / "vectors.json"
        self._vector_model: tuple[int, str | None] | None = None  # (file mtime, model), read again on change
        self._checked_empty = False  # whether the first add looked for an empty store (see ``add``)
        self._chunks: ChunkStore | None = None
        self._chunks_checked = False  # whether ``_chunks`` was found (or made) in step with the store
        if not self.remote and not self._generation_path.exists() and self.index_dir.exists():
            try:
                self.renew_generation()  # a folder from before generations: its cache files are checked once more
            except OSError as exc:  # a read-only folder is still searchable
                log.info("%s not written (%s)", self._generation_path, exc)
        before_windows = bool(len(self.bm25)) and not self.bm25_windows.path.exists()
        # An index made before window units and the vectors' model were recorded (by the judge embedder).
        self.legacy = before_windows and not self._vectors_path.exists()
        if before_windows:
            self.rebuild_windows()
        if len(self.bm25) and self.bm25.analysis != ANALYSIS_VERSION:
            self.reanalyze()

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentIndex:
        return cls(settings.index_dir, settings.collection, settings.chroma_url, settings.chroma_dir,
                   settings.dense_shortlist_above, settings.window_heading_weight, settings.window_heading_terms)

    def _open_bm25(self, path: Path) -> BM25Index:
        try:
            return BM25Index(path, analysis=ANALYSIS_VERSION)
        except (ValueError, OSError) as exc:
            log.warning("%s; searched as empty until 'rag index repair' derives it again from the chunks", exc)
            self.damaged.append(f"{path.name}: {exc}")
            empty = BM25Index(None, analysis=ANALYSIS_VERSION)
            empty.path = path  # the next save writes a good one in its place
            return empty

    def analyzer(self, language: str | None) -> Analyzer:
        return self._analyzers.get(language or "en", self._analyzers["en"])

    @property
    def vector_model(self) -> str | None:
        """Id of the model that made the stored vectors (None: not recorded, an index older than the record)."""
        try:
            mtime = self._vectors_path.stat().st_mtime_ns
        except OSError:
            return None
        if self._vector_model is None or self._vector_model[0] != mtime:  # queries ask each time: read on change
            try:
                model = json.loads(self._vectors_path.read_text(encoding="utf-8")).get("model")
            except (OSError, ValueError, AttributeError):
                model = None
            self._vector_model = (mtime, model)
        return self._vector_model[1]

    @property
    def generation(self) -> str | None:
        """A token renewed before every write to Chroma (None: not kept, a Chroma server or an older folder):
        files derived from the store and saved at this generation (``rag.exact``'s cache) still match it."""
        if self.remote:
            return None
        try:
            return self._generation_path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def renew_generation(self) -> None:
        """Called before writing to Chroma: a run killed during or after the write leaves a new generation, so
        nothing saved before it is taken for the store's present state."""
        if self.remote:
            return
        self.index_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._generation_path.with_suffix(".tmp")
        tmp.write_text(uuid.uuid4().hex, encoding="utf-8")
        os.replace(tmp, self._generation_path)

    def record_vector_model(self, model_id: str) -> None:
        if self.vector_model != model_id:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            tmp = self._vectors_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"model": model_id}), encoding="utf-8")
            os.replace(tmp, self._vectors_path)

    def add(self, chunks: list[Chunk], embeddings: np.ndarray, model_id: str | None = None) -> None:
        terms = {c.id: self.analyzer(c.metadata.language).terms(c.text) for c in chunks}
        windowed, vectors = window_units(chunks, embeddings, self._heading_vectors(chunks), self.heading_weight)
        window_terms = self._window_terms(windowed)
        with self.lock:
            texts = self.chunk_store()  # checked before the generation moves on
            if model_id is not None:
                self.record_vector_model(model_id)
            if not self._checked_empty:  # an index built from nothing keeps its vectors' matrices as it grows
                self._checked_empty = True
                if not self.remote and self.store.count() == 0 and self.windows.count() == 0:
                    self.exact.start_empty()
                    self.exact_windows.start_empty()
            self.renew_generation()
            self.store.add(chunks, embeddings)
            self.exact.add([c.id for c in chunks], embeddings)
            if windowed:
                self.windows.add(windowed, vectors, vectors_only=True)
                self.exact_windows.add([c.id for c in windowed], vectors)
            self.bm25.add(terms)
            self.bm25_windows.add(window_terms)
            if texts is not None:
                self._write_chunks(lambda: texts.add(chunks, self.generation))

    def delete(self, ids: list[str]) -> None:
        with self.lock:
            texts = self.chunk_store()
            self.renew_generation()
            self.store.delete(ids)
            self.windows.delete(ids)
            self.exact.delete(ids)
            self.exact_windows.delete(ids)
            self.bm25.delete(ids)
            self.bm25_windows.delete(ids)
            if texts is not None:
                self._write_chunks(lambda: texts.delete(ids, self.generation))

    def chunk_store(self) -> ChunkStore | None:
        """The chunks' text and metadata for reads, in step with Chroma (copied out of it once when not); None
        for a Chroma server (other clients may write to it) or a folder where the file cannot be kept."""
        if self._chunks_checked:
            return self._chunks
        with self.lock:
            if not self._chunks_checked:
                self._chunks = self._checked_chunk_store()
                self._chunks_checked = True
        return self._chunks

    def _reader(self) -> ChunkStore | ChromaStore:
        """Where chunks, filters and counts are read: the chunk store, else Chroma (same ``get``/``ids``/``count``)."""
        texts = self.chunk_store()
        return texts if texts is not None else self.store

    def _checked_chunk_store(self) -> ChunkStore | None:
        if self.remote:
            return None
        current = self.generation
        if current is None:
            try:
                self.renew_generation()  # a folder not made yet
            except OSError:
                return None  # a read-only folder that keeps no generation: nothing to check the file with
            current = self.generation
        try:
            texts = ChunkStore(self.index_dir / CHUNKS_FILE)
            if texts.generation != current:
                self._copy_chunks(texts, current)
            return texts
        except (sqlite3.Error, OSError) as exc:
            log.warning("%s unusable (%s); chunks are read from Chroma", self.index_dir / CHUNKS_FILE, exc)
            return None

    def _copy_chunks(self, texts: ChunkStore, generation: str) -> None:
        """Fill ``texts`` from Chroma: an index from before the file, or one written without it. While a repair
        refills a lost Chroma from this file (its marker is there), the file is the better copy: kept whole."""
        if (self.index_dir / REBUILDING_MARKER).exists():
            texts.stamp(generation)
            return
        texts.clear()
        copied = 0
        if self.store.exists():
            ids = self.store.ids()
            for start in range(0, len(ids), _COPY_BATCH):
                part = self.store.get(ids[start:start + _COPY_BATCH])
                texts.add(list(part.values()), "")  # not in step until the last batch is in
                copied += len(part)
        texts.stamp(generation)
        if copied:
            log.info("copied the text and metadata of %d chunks out of Chroma into %s", copied, texts.path)

    def _write_chunks(self, write) -> None:
        """Chroma is written first: a failure here leaves the file behind, so it is checked again on next use."""
        try:
            write()
        except (sqlite3.Error, OSError):
            self._chunks_checked = False
            raise

    def _window_terms(self, chunks: list[Chunk]) -> dict[str, list[str]]:
        """A window unit's BM25 terms: its window's (a chunk without one: its own), then its heading's
        ``heading_terms`` times."""
        out = {}
        for c in chunks:
            analyzer = self.analyzer(c.metadata.language)
            terms = analyzer.terms(c.metadata.window or c.text)
            if self.heading_terms and c.metadata.section:
                terms += analyzer.terms(c.metadata.section) * self.heading_terms
            out[c.id] = terms
        return out

    def _heading_vectors(self, chunks: list[Chunk]) -> dict[str, np.ndarray]:
        return heading_vectors(chunks, self.heading_weight, self.embed_headings)

    def rebuild_windows(self, batch: int = 2000, only: set[str] | None = None) -> int:
        """Derive the window units from the stored chunks and vectors (an older index, an imported snapshot);
        ``only``: of these documents' chunks alone (by ``Chunk.document_id``)."""
        ids = [cid for cid in self.store.ids() if only is None or Chunk.document_id(cid) in only]
        by_doc: dict[str, list[str]] = defaultdict(list)
        chunks = {}
        for start in range(0, len(ids), batch):
            part = self.store.get(ids[start:start + batch])
            chunks.update(part)
            for cid, chunk in part.items():
                by_doc[chunk.metadata.doc_id].append(cid)
        added = 0
        with self.lock:
            for doc_ids in _batches(list(by_doc.values()), batch):
                members = [cid for doc in doc_ids for cid in doc]
                vectors = self.store.vectors(members)
                part = [chunks[cid] for cid in members]
                windowed, window_vectors = window_units(part, np.stack([vectors[cid] for cid in members]),
                                                        self._heading_vectors(part), self.heading_weight)
                if windowed:
                    self.renew_generation()
                    self.windows.add(windowed, window_vectors, vectors_only=True)
                    self.exact_windows.add([c.id for c in windowed], window_vectors)
                    self.bm25_windows.add(self._window_terms(windowed))
                    added += len(windowed)
            if added and self._chunks_checked and self._chunks is not None:  # chunks unchanged: still in step
                self._chunks.stamp(self.generation)
            self.bm25_windows.save()
        if added:
            log.info("derived %d sentence-window units from the stored chunks", added)
        return added

    def reanalyze(self, batch: int = 2000) -> int:
        """Recompute every BM25 term list from the stored chunk texts: an index whose terms an older analysis
        made (``ANALYSIS_VERSION``) would otherwise miss what queries now look for (e.g. "3" for "tres")."""
        with self.lock:
            ids = self.bm25.ids()
            windowed = set(self.bm25_windows.ids())
            for start in range(0, len(ids), batch):
                part = self.store.get(ids[start:start + batch])
                self.bm25.add({cid: self.analyzer(c.metadata.language).terms(c.text) for cid, c in part.items()})
                self.bm25_windows.add(self._window_terms([c for cid, c in part.items() if cid in windowed]))
            self.bm25.analysis = self.bm25_windows.analysis = ANALYSIS_VERSION
            self.save()
        log.info("re-analysed the BM25 terms of %d chunks (%s)", len(ids), ANALYSIS_VERSION)
        return len(ids)

    def search_dense(self, vector: np.ndarray, n: int, allowed: set[str] | None = None, windows: bool = False,
                     approximate: bool = False) -> list[tuple[str, float]]:
        """Nearest chunks (or sentence windows) by cosine, ``allowed`` restricting the ids: exact (``rag.exact``)
        or, ``approximate``, Chroma's HNSW graph (``RAG_DENSE_SEARCH=hnsw``: no vectors held in memory)."""
        if approximate:
            store = self.windows if windows else self.store
            if allowed is not None and not allowed:
                return []
            return store.nearest(vector, n, ids=allowed)
        with self.lock:
            return (self.exact_windows if windows else self.exact).search(vector, n, allowed)

    def search_bm25(self, terms: list[str], n: int, allowed: set[str] | None = None,
                    windows: bool = False) -> list[tuple[str, float]]:
        with self.lock:
            return (self.bm25_windows if windows else self.bm25).search(terms, n, allowed=allowed)

    def count(self) -> int:
        return self._reader().count()

    def ids(self) -> list[str]:
        """Every stored chunk's id (the chunk store's, else Chroma's)."""
        return self._reader().ids()

    def windowed(self) -> bool:
        """Whether sentence-window units are indexed (``search_*(..., windows=True)`` finds anything)."""
        return len(self.bm25_windows) > 0

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        """The stored chunks of ``ids`` (ids not stored are left out)."""
        return self._reader().get(ids)

    def allowed(self, where: dict[str, Any]) -> set[str]:
        """The ids of the chunks whose metadata ``where`` lets through (Chroma's filter syntax)."""
        return set(self._reader().ids(where))

    def idf(self, terms: list[str]) -> dict[str, float]:
        """BM25 inverse document frequency of each term (rare terms weigh more in evidence scoring)."""
        with self.lock:
            return self.bm25.idf(terms)

    def save(self, vectors: bool = True) -> None:
        """Write the BM25 indexes and (``vectors``) the exact search's vector files and BM25's impacts; those are
        optional (an index without them reads its vectors out of Chroma, or computes the impacts, once), so a long
        ingest writes them at its end."""
        with self.lock:
            self.bm25.save(impacts=vectors)
            self.bm25_windows.save(impacts=vectors)
            if vectors:
                self.exact.save()
                self.exact_windows.save()

    def drop(self) -> None:
        """Delete the Chroma collection (a deleted ``rag`` collection; its folder goes with the caller)."""
        with self.lock:
            texts = self.chunk_store()
            self.renew_generation()
            self.store.drop()
            self.windows.drop()
            if texts is not None:
                self._write_chunks(lambda: texts.clear(self.generation))
            self.exact.reset()
            self.exact_windows.reset()

    def close_chroma(self) -> None:
        """Let go of the Chroma folder (a repair moves an unreadable one aside); the next use opens it anew."""
        self.store.close()
        self.windows.close()
        self.exact.reset()
        self.exact_windows.reset()

    def reset_chunk_store(self) -> None:
        """Start ``chunks.sqlite`` again from Chroma (an unreadable file: its caller moved it aside)."""
        with self.lock:
            if self._chunks is not None:
                self._chunks.close()
            self._chunks, self._chunks_checked = None, False
            path = self.index_dir / CHUNKS_FILE
            for suffix in ("-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        self.chunk_store()

    def resync_derived(self, stored: set[str], windows: set[str], batch: int = 2000) -> dict[str, int]:
        """Bring what is derived from the stores of record in step with them (``stored``: Chroma's ids,
        ``windows``: the window collection's, as the caller listed them): BM25 (both sides) and the window units
        get the chunks they lack and lose those the stores no longer hold. Returns, by file or collection, how many
        ids were added or dropped (empty: all in step)."""
        changed: dict[str, int] = {}
        with self.lock:
            for bm25, windowed in ((self.bm25, False), (self.bm25_windows, True)):
                have = set(bm25.ids())
                extra, missing = sorted(have - stored), sorted(stored - have)
                bm25.delete(extra)
                for start in range(0, len(missing), batch):
                    part = list(self.get(missing[start:start + batch]).values())
                    bm25.add(self._window_terms(part) if windowed
                             else {c.id: self.analyzer(c.metadata.language).terms(c.text) for c in part})
                if extra or missing:
                    changed[bm25.path.name if bm25.path else "bm25"] = len(extra) + len(missing)
            extra, missing = sorted(windows - stored), stored - windows
            if extra:
                self.renew_generation()
                self.windows.delete(extra)
                self.exact_windows.delete(extra)
            if missing:
                self.rebuild_windows(only={Chunk.document_id(cid) for cid in missing})
            if extra or missing:
                changed[f"{self.windows.name} (window vectors)"] = len(extra) + len(missing)
        return changed


def heading_vectors(chunks: list[Chunk], weight: float, embed) -> dict[str, np.ndarray]:
    """The vector of each distinct section heading among ``chunks`` (none without a weight or an embedder)."""
    if not weight or embed is None:
        return {}
    headings = sorted({c.metadata.section for c in chunks if c.metadata.section})
    if not headings:
        return {}
    return dict(zip(headings, np.asarray(embed(headings), dtype=np.float32), strict=True))


def window_units(chunks: list[Chunk], embeddings: np.ndarray, headings: Mapping[str, np.ndarray] | None = None,
                 heading_weight: float = 0.0) -> tuple[list[Chunk], np.ndarray]:
    """Every chunk with its window vector: for a sentence, the normalised mean of the vectors of the same
    document's windowed chunks within ``window`` ordinals (the sentences its window holds); a chunk without a
    window (a table, another chunker's passage) is its own window, so that it is not outranked by sentences
    only for being found by fewer rankings. A chunk whose section heading is in ``headings`` then adds
    ``heading_weight`` times the heading's vector (normalised again)."""
    if not chunks:
        return [], np.zeros((0, embeddings.shape[1] if embeddings.ndim == 2 else 0), dtype=np.float32)
    by_doc: dict[str, dict[int, int]] = defaultdict(dict)
    for i, chunk in enumerate(chunks):
        if chunk.metadata.window:
            by_doc[chunk.metadata.doc_id][chunk.metadata.ordinal] = i
    vectors = np.array(embeddings, dtype=np.float32, copy=True)
    for doc in by_doc.values():
        for ordinal, i in doc.items():
            reach = _window_size(chunks[i])
            members = [doc[o] for o in range(ordinal - reach, ordinal + reach + 1) if o in doc]
            vectors[i] = _unit(embeddings[members].mean(axis=0))
    if headings and heading_weight:
        for i, chunk in enumerate(chunks):
            heading = headings.get(chunk.metadata.section or "")
            if heading is not None:
                vectors[i] = _unit(vectors[i] + heading_weight * heading)
    return list(chunks), vectors


def _unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1 (a zero vector as it is)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _window_size(chunk: Chunk) -> int:
    try:
        return int(json.loads(chunk.metadata.chunker_params or "{}").get("window", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def _batches(groups: list[list[str]], size: int) -> list[list[list[str]]]:
    """Whole documents per batch (a window needs its neighbours), about ``size`` chunks each."""
    out: list[list[list[str]]] = [[]]
    count = 0
    for group in groups:
        if count and count + len(group) > size:
            out.append([])
            count = 0
        out[-1].append(group)
        count += len(group)
    return [b for b in out if b]
