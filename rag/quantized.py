"""Compact copies of a collection's vectors, to shortlist a large collection before exact scoring.

One exact matrix product per query reads every stored vector: at a million 384-d vectors that is 1.5 GB per
matrix and per query (hundreds of milliseconds on two cores), and the whole matrix stays resident. Two compact
copies answer first, as in the binary-then-int8 rescoring recipe of sentence-transformers' embedding
quantization:

1. **Binary codes**: one bit per dimension, the sign of (vector - centre), 48 bytes for 384 floats. Every code is
   compared with the query's by a Hamming distance in which the query's stronger half of dimensions counts
   twice (an asymmetric distance: a mismatch where the query leans hard matters more); the nearest
   ``SHORTLIST_FRACTION`` of the collection (at least ``SHORTLIST_MIN`` rows) go on.
2. **int8 vectors**: each dimension scaled to -127..127, 384 bytes per vector, rank the shortlist by an almost
   exact dot product; the best ``KEEP_FACTOR`` x n rows are then scored exactly from the float matrix, which is
   touched at those rows alone.

The centre is the collection's mean vector. e5 vectors share a large common component (their cosines sit in a
narrow band), so signs around zero would say little; around the mean they keep what tells vectors apart, and for
a fixed query q·(x - c) ranks exactly like q·x.

What it keeps of the exact ranking is measured on real vectors by ``python -m bench.shortlist`` (SciFact
sentences, 300 claims, the fraction alone deciding as at a million vectors): with a 2% shortlist, 0.969 of the
exact top 10 and 0.906 of the top 30 for multilingual-e5-small (whose vectors sit close together), 0.996 and
0.983 for all-MiniLM-L6-v2; a plain Hamming distance keeps 0.927 / 0.824 and 0.989 / 0.958 (``docs/scale.md``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

BLOCK_ROWS = 65_536  # rows encoded per step (the matrix is never copied whole)
SHORTLIST_FRACTION = 0.02  # of the searched rows, kept by the binary codes
SHORTLIST_MIN = 2000  # rows kept by the binary codes, at least
KEEP_FACTOR = 4  # rows scored exactly per hit asked for, after the int8 ranking


class QuantizedVectors:
    """Binary codes and int8 copies of a matrix's rows (row order kept)."""

    def __init__(self, centre: np.ndarray, scale: np.ndarray, codes: np.ndarray, small: np.ndarray) -> None:
        self.centre = np.asarray(centre, dtype=np.float32)  # the codes' zero
        self.scale = np.asarray(scale, dtype=np.float32)  # int8 value = round(x * scale), per dimension
        self.codes = codes  # (words, rows) uint64: sign bits, one word-row per 64 dimensions (row-contiguous)
        self.small = small  # (rows, dims) int8

    @classmethod
    def encode(cls, matrix: np.ndarray) -> QuantizedVectors:
        """Codes of every row of ``matrix`` around its mean (a memory-mapped matrix is read block by block
        through the file, so that encoding does not leave it resident)."""
        dims = matrix.shape[1]
        total, peak = np.zeros(dims, dtype=np.float64), np.zeros(dims, dtype=np.float32)
        for block in _blocks(matrix):
            total += block.sum(axis=0, dtype=np.float64)
            peak = np.maximum(peak, np.abs(block).max(axis=0))
        centre = (total / max(matrix.shape[0], 1)).astype(np.float32)
        scale = (127.0 / np.where(peak > 0, peak, 1.0)).astype(np.float32)
        empty = cls(centre, scale, np.zeros(((dims + 63) // 64, 0), dtype=np.uint64),
                    np.zeros((0, dims), dtype=np.int8))
        return empty.append(matrix)

    def append(self, vectors: np.ndarray) -> QuantizedVectors:
        """These rows followed by ``vectors``' (same centre and scale; values beyond the scale are clipped)."""
        codes, small = [self.codes], [self.small]
        for block in _blocks(vectors):
            codes.append(self._bits(block > self.centre))
            small.append(np.clip(np.rint(block * self.scale), -127, 127).astype(np.int8))
        if len(codes) == 1:
            return self
        return QuantizedVectors(self.centre, self.scale, np.ascontiguousarray(np.concatenate(codes, axis=1)),
                                np.concatenate(small))

    def take(self, rows: np.ndarray) -> QuantizedVectors:
        return QuantizedVectors(self.centre, self.scale, np.ascontiguousarray(self.codes[:, rows]), self.small[rows])

    def __len__(self) -> int:
        return self.codes.shape[1]

    @staticmethod
    def _bits(flags: np.ndarray) -> np.ndarray:
        """(rows, dims) booleans as (words, rows) uint64, dimensions padded to whole words."""
        pad = (-flags.shape[1]) % 64
        if pad:
            flags = np.pad(flags, ((0, 0), (0, pad)))
        packed = np.packbits(flags, axis=1)  # (rows, dims / 8) bytes
        return np.ascontiguousarray(packed.view(np.uint64).T)

    def shortlist(self, vector: np.ndarray, n: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Rows (among ``rows``, default all) likeliest to hold the ``n`` nearest to ``vector``, ascending."""
        vector = np.asarray(vector, dtype=np.float32)
        pool = len(self) if rows is None else len(rows)
        size = min(pool, max(SHORTLIST_MIN, int(SHORTLIST_FRACTION * pool)))
        first = self._nearest_codes(vector, size, rows)
        if rows is not None:
            first = rows[first]
        approx = self.small[first].astype(np.float32) @ (vector / self.scale)
        keep = min(len(first), max(KEEP_FACTOR * n, 1))
        if keep < len(first):
            first = first[np.argpartition(-approx, keep - 1)[:keep]]
        return np.sort(first)

    def _nearest_codes(self, vector: np.ndarray, size: int, rows: np.ndarray | None) -> np.ndarray:
        """Positions (in ``rows``, or rows) of the ``size`` codes nearest the query's by weighted Hamming
        distance; ties at the cut are all kept."""
        offset = vector - self.centre
        query = self._bits((offset > 0)[None, :])[:, 0]
        strong = np.abs(offset) >= np.median(np.abs(offset))
        weights = self._bits(strong[None, :])[:, 0]
        count = len(self) if rows is None else len(rows)
        distance = np.zeros(count, dtype=np.uint16)
        differ, bits = np.empty(count, dtype=np.uint64), np.empty(count, dtype=np.uint8)
        for word in range(self.codes.shape[0]):
            codes = self.codes[word] if rows is None else self.codes[word, rows]
            np.bitwise_xor(codes, query[word], out=differ)
            distance += np.bitwise_count(differ, out=bits)
            np.bitwise_and(differ, weights[word], out=differ)
            distance += np.bitwise_count(differ, out=bits)
        if size >= count:
            return np.arange(count)
        # Distances are small integers: the cut comes from their histogram, cheaper than a partition.
        cut = int(np.searchsorted(np.cumsum(np.bincount(distance)), size))
        return np.flatnonzero(distance <= cut)


def _blocks(matrix: np.ndarray) -> Iterator[np.ndarray]:
    """``matrix`` in blocks of rows; a memory-mapped one read through its file (page cache, not this process's
    resident memory)."""
    if (isinstance(matrix, np.memmap) and matrix.filename and matrix.flags.c_contiguous
            and os.path.getsize(matrix.filename) == matrix.offset + matrix.nbytes):  # the whole mapped file
        row_bytes = matrix.shape[1] * matrix.dtype.itemsize
        with open(matrix.filename, "rb") as fh:
            fh.seek(matrix.offset)
            for start in range(0, matrix.shape[0], BLOCK_ROWS):
                rows = min(BLOCK_ROWS, matrix.shape[0] - start)
                data = np.frombuffer(fh.read(rows * row_bytes), dtype=matrix.dtype)
                yield data.reshape(rows, matrix.shape[1]).astype(np.float32, copy=False)
        return
    for start in range(0, matrix.shape[0], BLOCK_ROWS):
        yield np.asarray(matrix[start:start + BLOCK_ROWS], dtype=np.float32)
