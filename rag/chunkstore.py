"""The chunks' text and metadata in a SQLite file beside the index, for the query path.

Chroma stays the store of record (it holds every chunk's text, metadata and vector, and a Chroma server shares
them between processes), but opening a large local collection costs seconds and gigabytes: its first read loads
the collection's segments (1,000,000 chunks: 5.2 s and +2.0 GB, issue 17), although a question only needs a
dozen chunks' text and, with a filter, the ids whose metadata pass. This file answers those from SQLite (Python's
own ``sqlite3``, no new dependency), so that a question never opens Chroma while the exact search's vector files
are in step.

It is derived like the exact search's cache: each write records the index's generation (``DocumentIndex``
renews it before every write to Chroma), and a file whose generation is not the index's (a run killed between
the two writes, an imported snapshot, an index from before this file) is filled again from Chroma once.

>>> store = ChunkStore(index_dir / "chunks.sqlite")
>>> store.get(["doc-00001-ab12cd34ef"])
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rag.types import Chunk, ChunkMetadata

# SQLite's default bound on a statement's parameters was 999 before 3.32; id lists are sent in slices of this.
_SLICE = 900
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_COMPARISONS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
# Filters by document and by element type (``rag.retriever.Filters``) read these through an index.
_INDEXED = ("source", "element_type")
_INT64 = (-(2**63), 2**63 - 1)


class ChunkStore:
    """Chunks by id, and the ids whose metadata pass a filter in Chroma's ``where`` syntax (``$and``, ``$or``,
    ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``). Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS chunks (id TEXT PRIMARY KEY, text TEXT NOT NULL, "
                             "metadata TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for field in _INDEXED:
                self._db.execute(f"CREATE INDEX IF NOT EXISTS chunks_{field} ON chunks({_path(field)})")

    @property
    def generation(self) -> str | None:
        """The index generation the stored rows were last written at (None: never written)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return row[0] if row else None

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        """The stored chunks of ``ids`` (ids not stored are left out)."""
        found: dict[str, Chunk] = {}
        with self._lock:
            for part in _slices(list(dict.fromkeys(ids))):
                rows = self._db.execute(f"SELECT id, text, metadata FROM chunks WHERE id IN ({_marks(part)})", part)
                for cid, text, metadata in rows:
                    found[cid] = Chunk(cid, text, ChunkMetadata.from_store(json.loads(metadata)))
        return found

    def ids(self, where: dict[str, Any] | None = None) -> list[str]:
        """Every stored id, or those whose metadata ``where`` lets through; a malformed filter raises
        ``ValueError`` naming the part that is wrong."""
        sql, params = ("1", []) if not where else _clause(where)
        with self._lock:
            return [row[0] for row in self._db.execute(f"SELECT id FROM chunks WHERE {sql}", params)]

    def add(self, chunks: list[Chunk], generation: str) -> None:
        """Store (or replace) ``chunks``; the rows and the generation are written in one transaction."""
        rows = [(c.id, c.text, json.dumps(c.metadata.to_store(), ensure_ascii=False)) for c in chunks]
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO chunks (id, text, metadata) VALUES (?, ?, ?)", rows)
            _stamp(db, generation)

    def delete(self, ids: Iterable[str], generation: str) -> None:
        with self._transaction() as db:
            for part in _slices(list(ids)):
                db.execute(f"DELETE FROM chunks WHERE id IN ({_marks(part)})", part)
            _stamp(db, generation)

    def clear(self, generation: str | None = None) -> None:
        """Remove every row; ``generation`` None also forgets the generation (the rows are to be filled again)."""
        with self._transaction() as db:
            db.execute("DELETE FROM chunks")
            if generation is None:
                db.execute("DELETE FROM meta WHERE key = 'generation'")
            else:
                _stamp(db, generation)

    def stamp(self, generation: str) -> None:
        """Record that the rows are in step with the index at ``generation`` (a write that left chunks alone)."""
        with self._transaction() as db:
            _stamp(db, generation)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)


class _Transaction:
    """``with`` block: the lock held, BEGIN ... COMMIT, ROLLBACK on an error."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self.db, self.lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        self.db.execute("BEGIN")
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        try:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.lock.release()


def _stamp(db: sqlite3.Connection, generation: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?)", (generation,))


def _slices(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _SLICE):
        yield ids[start:start + _SLICE]


def _marks(values: list[Any]) -> str:
    return ", ".join("?" * len(values))


def _path(field: str) -> str:
    """The SQL expression of a metadata field (a literal path, so that the expression indexes apply)."""
    return f"json_extract(metadata, '$.{field}')"


def _clause(where: dict[str, Any]) -> tuple[str, list[Any]]:
    """SQL and parameters for a Chroma ``where`` filter. A field missing from a chunk's metadata passes ``$ne`` and
    ``$nin`` and no other comparison: Chroma's rule (checked against it in the tests)."""
    if not isinstance(where, dict) or not where:
        raise ValueError(f"a filter must be a non-empty mapping, got {where!r}")
    if len(where) > 1:  # several fields side by side: all must hold
        return _clause({"$and": [{key: value} for key, value in where.items()]})
    (key, value), = where.items()
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"{key} takes a non-empty list of filters, got {value!r}")
        parts = [_clause(part) for part in value]
        joiner = " AND " if key == "$and" else " OR "
        return "(" + joiner.join(sql for sql, _ in parts) + ")", [p for _, params in parts for p in params]
    if not _FIELD.match(key):
        raise ValueError(f"unknown filter operator or field name {key!r}")
    if not isinstance(value, dict):
        value = {"$eq": value}
    if len(value) != 1:
        raise ValueError(f"the filter on {key!r} needs exactly one operator, got {value!r}")
    (op, operand), = value.items()
    field = _path(key)
    if op in _COMPARISONS:
        operand = _scalar(key, operand)
        if op == "$ne":
            return f"({field} IS NULL OR {field} != ?)", [operand]
        return f"({field} {_COMPARISONS[op]} ?)", [operand]
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise ValueError(f"{op} on {key!r} takes a list, got {operand!r}")
        operand = [_scalar(key, item) for item in operand]
        if not operand:
            return ("0" if op == "$in" else "1"), []
        if op == "$nin":
            return f"({field} IS NULL OR {field} NOT IN ({_marks(operand)}))", list(operand)
        return f"({field} IN ({_marks(operand)}))", list(operand)
    raise ValueError(f"unknown filter operator {op!r} on {key!r}")


def _scalar(key: str, value: Any) -> str | int | float | bool:
    """``value`` as SQLite can bind it: an integer beyond 64 bits (a page "up to 2**63") compares as a float."""
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"the filter on {key!r} compares with a string, number or boolean, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        return float(value)
    return value
