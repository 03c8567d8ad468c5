"""Exact dense search: a collection's vectors held in memory and ranked by one matrix product.

Chroma's HNSW graph is approximate, and on e5 vectors (whose cosines all sit in a narrow band) it lost much of
the true top 100: over SciFact's 51,776 sentence vectors its top 100 shared 64% with the exact top 100 on
average, 0% for some claims, and neither ``ef_search`` nor ``max_neighbors=32, ef_construction=200`` mended it
(67%). The exact product takes ~4 ms per query there (384 floats per chunk, 1.5 KB of memory each), so it is
the default (``RAG_DENSE_SEARCH=exact``); Chroma stays the store of record, and the matrix is read from it on
first use and kept in step with every add and delete.

Reading every vector out of Chroma takes seconds (about 5 s per 100,000 vectors here), so the matrix is also kept
beside the index: ``exact-<collection>.npz`` (the ids, the vectors' model, the store's generation and the name
of the vectors' file) and ``exact-<collection>.<token>.npy``, the matrix itself, opened memory-mapped (nothing is
read until a search touches it, and processes opening the same index share its pages). Each save writes a new
matrix file and then the small file naming it, so a reader never pairs ids with another save's matrix.

The cache is used only when its model is the index's and it holds Chroma's ids: anything else (a killed run,
another process's ingest, another embedder) reads Chroma again. Listing Chroma's ids to compare takes seconds too
(about 1.4 s per 100,000), so an index folder that keeps a generation (a token the index renews before each write
to Chroma, ``DocumentIndex.generation``) compares that instead: a cache saved at the store's present generation
holds its ids. A process that writes before it has loaded the matrix (``rag ingest``) drops the cache file
instead: ids alone cannot tell that a known id got a new vector (a window's, when its reach or heading changed).

Above ``shortlist_above`` searched vectors (200,000 by default, ``RAG_DENSE_SHORTLIST_ABOVE``), a search first
ranks them by compact copies (``rag.quantized``: binary codes, then int8 vectors; kept with the cache, the int8
copies in their own memory-mapped ``exact-<collection>.<token>.int8.npy``) and
scores exactly only the best few: at a million vectors the product would otherwise read 1.5 GB per query and
keep the whole matrix resident. Those few rows are read from the matrix file with ``pread`` rather than through
its mapping: each touch of the mapping maps 64 KB of cached pages around it (the kernel's fault-around, which
``MADV_RANDOM`` does not stop), and those pages count as the process's memory; at 1,000,000 chunks the two
matrices' mapped pages grew by 1.8 GB over 100 queries.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag.packing import pack_strings, unpack_strings
from rag.quantized import QuantizedVectors
from rag.vectorstore import ChromaStore

log = logging.getLogger(__name__)

_READ_BATCH = 5000  # ids per read from Chroma (its SQL layer limits variables per statement)
SHORTLIST_ABOVE = 200_000  # searched vectors above which searches shortlist by the compact copies
_PREAD_ROWS = 5000  # above this many rows a search reads them through the mapping


class ExactVectors:
    """Every vector of one Chroma collection, searched exactly. Not thread-safe: callers hold the index lock."""

    def __init__(self, store: ChromaStore, cache: Path | None = None,
                 model: Callable[[], str | None] | None = None,
                 generation: Callable[[], str | None] | None = None,
                 shortlist_above: int = SHORTLIST_ABOVE) -> None:
        self.store = store
        self.cache = cache  # None: no cache file
        self.model = model or (lambda: None)  # the stored vectors' model, as the index records it
        self.generation = generation or (lambda: None)  # the store's generation (None: not kept, list its ids)
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._file: tuple[np.ndarray, str, int] | None = None  # (the mapped matrix, its file, data offset)
        self._alive = np.zeros(0, dtype=bool)
        self.shortlist_above = shortlist_above  # 0: never shortlist
        self._codes: QuantizedVectors | None = None  # compact copies of the matrix's rows (made when needed)
        self._loaded = False
        self._dirty = False  # the matrix changed since the cache files were written
        self._codes_dirty = False  # only the codes did (the small file is written again, not the matrix)
        self._vectors_file: str | None = None  # the matrix file the cache names
        self._buffer: np.ndarray | None = None  # room for added rows: ``_matrix`` is its head (None: no room)

    def start_empty(self) -> None:
        """Hold the (empty) store's vectors from now on: an index built from nothing keeps its matrix in step
        with every add and saves it, so that its first search does not read every vector back out of Chroma."""
        if not self._loaded:
            self._set([], np.zeros((0, 0), dtype=np.float32))

    def _load(self) -> None:
        if self._load_cache():
            return
        ids = self.store.ids()
        matrix: np.ndarray | None = None  # filled batch by batch (no second copy of every vector)
        kept: list[str] = []
        for start in range(0, len(ids), _READ_BATCH):
            batch = self.store.vectors(ids[start:start + _READ_BATCH])
            if not batch:
                continue
            if matrix is None:
                matrix = np.empty((len(ids), len(next(iter(batch.values())))), dtype=np.float32)
            for cid, vector in batch.items():  # ids deleted meanwhile are left out
                matrix[len(kept)] = vector
                kept.append(cid)
        self._set(kept, matrix[:len(kept)] if matrix is not None else np.zeros((0, 0), dtype=np.float32))
        if self._ids:
            log.info("loaded %d vectors of %s for exact search", len(self._ids), self.store.name)
        self._dirty = True
        self.save()
        if not self._dirty and self._vectors_file and self.cache is not None:  # saved: map it, free the copy
            self._matrix = self._mapped(self.cache.with_name(self._vectors_file))

    def _load_cache(self) -> bool:
        """Take the matrix from the cache file when it holds exactly the store's ids, by the same model."""
        if self.cache is None or not self.cache.exists():
            return False
        try:
            with np.load(self.cache, allow_pickle=False) as data:
                ids, model = data["ids"], str(data["model"])
                cached = unpack_strings(ids) if ids.dtype == np.uint8 else ids.tolist()
                generation = str(data["generation"]) if "generation" in data.files else ""
                codes = None
                if "small_file" in data.files:  # the int8 copies in their own file, memory-mapped
                    small = _read_ahead(np.load(self.cache.with_name(str(data["small_file"])), mmap_mode="r",
                                                allow_pickle=False))
                    codes = QuantizedVectors(data["centre"], data["scale"], data["codes"], small)
                vectors_file = None
                if "vectors" in data.files:  # the first version of the cache: the matrix inside
                    matrix = data["vectors"]
                else:
                    vectors_file = str(data["vectors_file"])
                    matrix = self._mapped(self.cache.with_name(vectors_file))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable (%s); vectors read from the store", self.cache, exc)
            return False
        if model != (self.model() or "") or matrix.shape[0] != len(cached) or not cached:
            return False
        current = self.generation()
        checked = current is not None and generation == current
        if not checked:
            ids = self.store.ids()
            if len(cached) != len(ids) or set(cached) != set(ids):
                return False
        self._set(cached, matrix.astype(np.float32, copy=False))
        if codes is not None and len(codes) == len(cached):
            self._codes = codes
        self._vectors_file = vectors_file
        self._dirty = not checked and current is not None  # still the store's: saved at its generation
        self.save()
        return True

    def _mapped(self, path: Path) -> np.ndarray:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        offset = getattr(matrix, "offset", None)
        self._file = (matrix, str(path), offset) if isinstance(matrix, np.memmap) and offset is not None else None
        return matrix

    def _rows_of(self, rows: np.ndarray) -> np.ndarray:
        """The matrix's ``rows`` (sorted), read from its file when it is the mapped one (see the module's note)."""
        if self._file is None or self._file[0] is not self._matrix or len(rows) > _PREAD_ROWS:
            return np.asarray(self._matrix[rows], dtype=np.float32)
        _, path, offset = self._file
        width = self._matrix.shape[1]
        size = width * self._matrix.itemsize
        out = np.empty((len(rows), width), dtype=self._matrix.dtype)
        with open(path, "rb", buffering=0) as fh:  # the file stays readable while mapped, even once replaced
            fd = fh.fileno()
            for i, row in enumerate(rows.tolist()):
                out[i] = np.frombuffer(os.pread(fd, size, offset + row * size), dtype=self._matrix.dtype)
        return out.astype(np.float32, copy=False)

    def _set(self, ids: list[str], matrix: np.ndarray) -> None:
        """Hold ``matrix`` (one row per id, all live) as the collection's vectors."""
        self._ids, self._matrix = ids, matrix
        self._rows = {cid: row for row, cid in enumerate(ids)}
        self._alive = np.ones(len(ids), dtype=bool)
        self._codes = None
        self._buffer = None
        self._loaded = True

    def save(self) -> None:
        """Write the cache files if the matrix changed since (atomic; a read-only index folder is no error)."""
        if self.cache is None or not self._loaded or not (self._dirty or self._codes_dirty):
            return
        if self.shortlist_above and len(self._rows) > self.shortlist_above:
            self._quantized()  # saved with the matrix: the first search after an open does not encode
        if self._dirty or self._vectors_file is None:
            self._compact()  # live rows only
            vectors = self.cache.with_name(f"{self.cache.stem}.{uuid.uuid4().hex[:12]}.npy")
        else:  # only the codes are new: the matrix file stays
            vectors = self.cache.with_name(self._vectors_file)
        tmp = self.cache.with_name(f"{self.cache.stem}.{os.getpid()}.tmp")
        try:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            if not vectors.exists():
                with open(tmp, "wb") as fh:
                    np.save(fh, np.ascontiguousarray(self._matrix, dtype=np.float32), allow_pickle=False)
                os.replace(tmp, vectors)
            extra = {}
            if self._codes is not None:  # the int8 copies (384 bytes a row) mapped, not read, on open
                small = self.cache.with_name(f"{self.cache.stem}.{uuid.uuid4().hex[:12]}.int8.npy")
                with open(tmp, "wb") as fh:
                    np.save(fh, np.ascontiguousarray(self._codes.small), allow_pickle=False)
                os.replace(tmp, small)
                extra = {"centre": self._codes.centre, "scale": self._codes.scale, "codes": self._codes.codes,
                         "small_file": np.array(small.name)}
            with open(tmp, "wb") as fh:
                np.savez(fh, ids=pack_strings(self._ids), model=np.array(self.model() or ""),
                         generation=np.array(self.generation() or ""), vectors_file=np.array(vectors.name),
                         **extra)
            os.replace(tmp, self.cache)  # now names the new matrix
            self._dirty = self._codes_dirty = False
            self._vectors_file = vectors.name
        except OSError as exc:
            log.info("%s not written (%s); vectors are read from the store on next open", self.cache, exc)
            tmp.unlink(missing_ok=True)
            return
        current = {vectors.name, str(extra.get("small_file", ""))}
        for old in self.cache.parent.iterdir():  # earlier saves' files (a reader holding one keeps its pages)
            if (old.name not in current
                    and re.fullmatch(re.escape(self.cache.stem) + r"\.[0-9a-f]{12}(\.int8)?\.npy", old.name)):
                old.unlink(missing_ok=True)

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        """Keep step with the store (after it was written): new ids are appended, known ones replaced."""
        if not ids:
            return
        if not self._loaded:  # read whole on first search; but known ids may have new vectors (a window's, when
            self._forget_cache()  # its reach or heading changed), which the cache's ids cannot tell: drop it
            return
        self._dirty = True
        self.delete(ids)
        self._append_rows(np.asarray(vectors, dtype=np.float32))  # the codes catch up when next needed
        for cid in ids:
            self._rows[cid] = len(self._ids)
            self._ids.append(cid)
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])

    def _forget_cache(self) -> None:
        """The next load reads the store (the matrix files go with the next save)."""
        if self.cache is not None:
            try:
                self.cache.unlink(missing_ok=True)
            except OSError as exc:  # a read-only folder: its cache stays, as its store does
                log.info("%s not removed (%s)", self.cache, exc)

    def _append_rows(self, vectors: np.ndarray) -> None:
        """Append rows to the matrix in amortised constant time per row (an ingest adds thousands of batches)."""
        rows, need = len(self._ids), len(self._ids) + len(vectors)
        if self._buffer is None or need > len(self._buffer) or self._buffer.shape[1] != vectors.shape[1]:
            buffer = np.empty((max(need, rows + rows // 2, 1024), vectors.shape[1]), dtype=np.float32)
            if rows:
                buffer[:rows] = self._matrix
            self._buffer = buffer
        self._buffer[rows:need] = vectors
        self._matrix = self._buffer[:need]

    def delete(self, ids: list[str]) -> None:
        if not self._loaded:
            return
        for cid in ids:
            row = self._rows.pop(cid, None)
            if row is not None:
                self._alive[row] = False
                self._dirty = True
        if len(self._alive) > 1000 and self._alive.sum() < len(self._alive) // 2:
            self._compact()

    def _compact(self) -> None:
        if self._alive.all():
            return
        keep = np.flatnonzero(self._alive)
        codes = self._quantized().take(keep) if self._codes is not None else None
        self._set([self._ids[i] for i in keep], self._matrix[keep])
        self._codes = codes

    def rebuild(self) -> None:
        """Read every vector from the store again and save the cache files (``rag index repair``)."""
        self.reset()
        self._forget_cache()
        self._load()

    def cached_ids(self) -> tuple[list[str], str] | None:
        """The ids and generation the cache file holds, without loading it (None: no cache file; ValueError:
        an unreadable one)."""
        return cached_ids(self.cache) if self.cache is not None else None

    def reset(self) -> None:
        """Forget the matrix (the collection was dropped or rebuilt); read again on next use."""
        self.__init__(self.store, self.cache, self.model, self.generation, self.shortlist_above)

    def search(self, vector: np.ndarray, n: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Top ``n`` (id, cosine) among live rows (vectors are unit length), ``allowed`` restricting the ids."""
        if not self._loaded:
            self._load()
        if not self._rows or n <= 0:
            return []
        vector = np.asarray(vector, dtype=np.float32)
        mask = self._alive
        if allowed is not None:
            mask = mask & np.fromiter((cid in allowed for cid in self._ids), dtype=bool, count=len(self._ids))
        everything = bool(mask.all())
        candidates = None if everything else np.flatnonzero(mask)  # None: every row (no list of them made)
        pool = len(mask) if candidates is None else candidates.size
        if pool == 0:
            return []
        n = min(n, pool)
        if self.shortlist_above and pool > self.shortlist_above:
            candidates = self._quantized().shortlist(vector, n, candidates)
            scores = self._rows_of(candidates) @ vector
        elif candidates is None:
            scores = self._matrix @ vector
            candidates = np.arange(pool)
        else:
            scores = (self._matrix @ vector)[candidates]
        top = np.argpartition(-scores, n - 1)[:n]
        ranked = sorted(top, key=lambda i: (-scores[i], self._ids[candidates[i]]))
        return [(self._ids[candidates[i]], float(scores[i])) for i in ranked]

    def _quantized(self) -> QuantizedVectors:
        """The compact copies of every row (rows added since they were made are appended now)."""
        if self._codes is not None and len(self._codes) < len(self._ids):
            self._codes = self._codes.append(self._matrix[len(self._codes):])
            self._codes_dirty = True
        if self._codes is None or len(self._codes) != len(self._ids):
            self._codes = QuantizedVectors.encode(self._matrix)
            self._codes_dirty = True
            log.info("binary and int8 copies of %d vectors of %s made for shortlisting", len(self._ids),
                     self.store.name)
            self.save()  # kept with the cache: the next open does not encode again
        return self._codes


def cached_ids(cache: Path) -> tuple[list[str], str] | None:
    """The ids and generation an exact-search cache file holds (None: no file; ValueError: unreadable, or its
    matrix file missing or of another length), read without loading the matrix."""
    if not cache.exists():
        return None
    try:
        with np.load(cache, allow_pickle=False) as data:
            ids = data["ids"]
            cached = unpack_strings(ids) if ids.dtype == np.uint8 else ids.tolist()
            generation = str(data["generation"]) if "generation" in data.files else ""
            if "vectors_file" in data.files:
                matrix = np.load(cache.with_name(str(data["vectors_file"])), mmap_mode="r", allow_pickle=False)
                if matrix.shape[0] != len(cached):
                    raise ValueError(f"{matrix.shape[0]} rows for {len(cached)} ids")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{cache.name}: unreadable ({exc})") from exc
    return cached, generation


def _read_ahead(array: np.ndarray) -> np.ndarray:
    """Ask the kernel to read a mapped file into its cache now, in the background: every shortlisted search
    reads the int8 copies at random rows, and from a cold disk the first queries at 1,000,000 chunks took
    171 ms at p50 instead of 84 ms while those pages came in one by one."""
    mapping = getattr(array, "_mmap", None)  # numpy.memmap's mapping (None for an empty array)
    if mapping is not None and hasattr(mmap, "MADV_WILLNEED"):
        try:
            mapping.madvise(mmap.MADV_WILLNEED)
        except OSError as exc:  # advice only
            log.debug("read-ahead not taken (%s)", exc)
    return array
