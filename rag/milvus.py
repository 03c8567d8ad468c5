"""A retrieval backend on Milvus (issue 36): the chunks, vectors, terms and filters of ``rag.index.DocumentIndex``,
kept by a Milvus server or cluster (``http://host:19530``), or by Milvus Lite inside this process (a URI that is a
file path ending in ``.db``: the same client API, nothing to run beside us).

One Milvus collection per product collection (``documents`` -> ``rag_documents``, see ``milvus_name``), one row
per chunk holding both of its units, so that a delete removes the sentence and its window at once:

- ``text`` and a nullable scalar column per ``ChunkMetadata`` field (its type from the dataclass: ``page`` INT64,
  ``file_mtime`` DOUBLE, ``ocr`` BOOL, strings VARCHAR), so that ``get`` gives back the chunk that was added and a
  filter on any metadata field runs on Milvus's side;
- ``vector`` (the chunk's) and ``window_vector`` (its window's, ``rag.index.window_units``: the same derivation as
  locally, nothing embedded twice), both indexed FLAT with the cosine metric: exact, as the local default;
- ``terms`` and ``window_terms``, with ``sparse`` and ``window_sparse`` computed from them by Milvus's own BM25
  function (``bm25_k1`` 1.5, ``bm25_b`` 0.75, the local values).

BM25 terms. The text Milvus's BM25 function analyses is the chunk's terms as ``rag.analysis`` makes them for the
local index (canonical: accents folded, stopwords dropped, Snowball stems, number words as digits), joined by
spaces, under Milvus's ``standard`` analyzer, which leaves such terms as they are; ``search_bm25`` passes the
question's terms joined the same way. So the terms are the local ones on every engine. Milvus's per-language
analyzers (``lowercase``, ``asciifolding``, ``stemmer``) were not used, for two reasons: Milvus Lite 3.2.2 builds
only the ``standard`` (and ``jieba``) tokenizer with a stop-word list and ignores every other filter without a
word (``milvus_lite/analyzer/factory.py``), so a "Spanish stemmer" field keeps "plazo" while the question's term
is "plaz"; and the product hands analysed terms to ``search_bm25`` and to ``idf`` (the grounding's weights), which
only mean something when the index holds those same terms. (A server's Tantivy stemmer would not make the local
terms either: no "-ación" rule, no number words as digits, other stopwords.)

What differs from the local engine:

- scores: Milvus's idf is ``log(1 + (N - df + 0.5) / (df + 0.5))`` (Lucene's, never negative) where rank-bm25's
  is ``log((N - df + 0.5) / (df + 0.5))`` floored at 0.25 x the mean idf, and a chunk without terms has length 0
  (locally 1, a placeholder): BM25 scores differ, and so can the order where very common terms weigh in. ``idf``
  returns Milvus's formula, with each term's document frequency counted by ``text_match`` (one query per term);
- filters name ``ChunkMetadata`` fields (another name is a ``ValueError``, locally it matches nothing), compare with
  values of the field's type (``{"page": "3"}`` is a ``ValueError``), and keep Chroma's rule that a chunk without
  the field passes ``$ne``/``$nin`` and no other comparison;
- ``lock`` is a lock of this process: two processes writing to one Milvus server are not serialised (issue 36
  item 3: a lease in the store); Milvus Lite itself serves one process per ``.db`` folder (it takes a lock file);
- ``approximate=True`` searches the same FLAT index (exact): an approximate index for very large collections
  (HNSW) comes with the scale bench (issue 36 item 7);
- a search returns at most 16,384 hits (Milvus's largest ``limit``); ``allowed`` pages through larger sets;
- ``save`` only flushes (Milvus persists every write); ``legacy`` is always False.

Milvus Lite 3.x is an engine in pure Python, for tests and small folders rather than for speed: on this machine
17,000 chunks (8-dimensional vectors) took 8 s to add, a filter passing 5,700 of them 1.1 s, one passing all of
them 6 s (``allowed``'s sets of ids are what issue 36 item 2 replaces with ``where=``).

Nothing leaves the machine with Milvus Lite: it serves the client over gRPC on 127.0.0.1, and the client is told
to ignore ``http_proxy`` for it (gRPC would otherwise send that loopback traffic, chunks included, to the proxy).
``tests/test_backend.py`` traces its connect() calls.

>>> backend = MilvusBackend(".rag-index/milvus.db")
>>> backend.add(chunks, vectors, model_id=dense.model_id); backend.search_bm25(["plaz", "recurs"], 5)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import threading
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from rag.analysis import SUPPORTED_LANGUAGES, Analyzer
from rag.backend import BackendUnavailable
from rag.index import heading_vectors, window_units
from rag.settings import Settings
from rag.types import Chunk, ChunkMetadata

try:
    import grpc
    from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException
    from pymilvus.client.types import Status
    from pymilvus.exceptions import MilvusUnavailableException
except ImportError as exc:  # pragma: no cover - both are dependencies of the package
    raise ImportError("RAG_BACKEND=milvus needs pymilvus and milvus-lite: pip install pymilvus milvus-lite") from exc

MODEL_PROPERTY = "rag.vector_model"  # the collection property naming the model that made the vectors
BM25_PARAMS = {"bm25_k1": 1.5, "bm25_b": 0.75}  # rag.bm25.BM25Index's defaults
_MAX_VARCHAR = 65535  # bytes: Milvus's largest VARCHAR
_MAX_TOPK = 16384  # Milvus's largest ``limit`` of a search or a query
_BATCH = 500  # rows per upsert and ids per read
_SCALAR_INDEXED = ("source", "doc_id", "element_type", "language", "page")  # what the product's filters read
_COMPARISONS = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_INT64 = (-(2**63), 2**63 - 1)
_COLLECTION_GONE = (100, 101)  # Milvus's error codes "collection not found" and "collection not loaded"


class MilvusUnavailable(BackendUnavailable):
    """Milvus cannot be reached or opened at ``uri`` (shown without credentials); the message says why."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(uri, f"Milvus at {uri} cannot be used: {reason}")


def _unreachable(exc: MilvusException) -> bool:
    """Whether ``exc`` says the server is away (connection refused, lost, timed out), rather than that the request
    was wrong: pymilvus reports a failed (re)connection as ``CONNECT_FAILED``, a lost one as gRPC's UNAVAILABLE."""
    if isinstance(exc, MilvusUnavailableException) or getattr(exc, "code", None) == Status.CONNECT_FAILED:
        return True
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, grpc.RpcError) and cause.code() in (grpc.StatusCode.UNAVAILABLE,
                                                                  grpc.StatusCode.DEADLINE_EXCEEDED)


_Call = typing.TypeVar("_Call", bound=Callable[..., Any])


def _reachable(method: _Call) -> _Call:
    """A backend method whose client calls raise ``MilvusUnavailable`` when the server is away (the API answers 503,
    the CLI one line); pymilvus reconnects by itself once the server is back. A server restarted meanwhile has
    released the collection (or another process dropped it): looked up and loaded again, and the call made again."""

    @functools.wraps(method)
    def guarded(self: MilvusBackend, *args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return method(self, *args, **kwargs)
            except MilvusException as exc:
                if getattr(exc, "code", None) not in _COLLECTION_GONE or not self._ready:
                    raise
                self._ready = False  # ``_exists`` looks the collection up (and loads it) again
                return method(self, *args, **kwargs)
        except MilvusException as exc:
            if not _unreachable(exc):
                raise
            raise MilvusUnavailable(self.uri, getattr(exc, "message", None) or str(exc)) from None

    return typing.cast(_Call, guarded)


def _metadata_kinds() -> dict[str, type]:
    """Each ``ChunkMetadata`` field's Python type (``int | None`` -> int; an ``ElementType`` is a str)."""
    hints = typing.get_type_hints(ChunkMetadata)
    kinds = {}
    for field in dataclasses.fields(ChunkMetadata):
        (kind,) = [t for t in typing.get_args(hints[field.name]) or (hints[field.name],) if t is not type(None)]
        kinds[field.name] = next(base for base in (bool, int, float, str) if issubclass(kind, base))
    return kinds


METADATA_KINDS = _metadata_kinds()


def milvus_name(collection: str) -> str:
    """The Milvus collection of a product collection: ``rag_`` and the name, each character other than a letter or
    a digit written as ``_`` and its hex code (Milvus names hold letters, digits and ``_`` only; this keeps two
    product names apart).

    >>> milvus_name("documents"), milvus_name("documents-legal_es")
    ('rag_documents', 'rag_documents_2dlegal_5fes')
    """
    return "rag_" + "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in collection)


def milvus_filter(where: Mapping[str, Any]) -> str:
    """A Milvus filter expression for a Chroma ``where`` filter (``rag.retriever.Filters.to_where``'s shape:
    ``$and``, ``$or``, ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``); a field missing
    from a chunk passes ``$ne`` and ``$nin`` and no other comparison, as in Chroma and ``rag.chunkstore``.

    >>> milvus_filter({"$and": [{"source": {"$in": ["ley.pdf"]}}, {"page": {"$gte": 3}}]})
    '((source in ["ley.pdf"]) and (page >= 3))'
    """
    if not isinstance(where, Mapping) or not where:
        raise ValueError(f"a filter must be a non-empty mapping, got {where!r}")
    if len(where) > 1:  # several fields side by side: all must hold
        return milvus_filter({"$and": [{key: value} for key, value in where.items()]})
    (key, value), = where.items()
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"{key} takes a non-empty list of filters, got {value!r}")
        return "(" + f" {key[1:]} ".join(milvus_filter(part) for part in value) + ")"
    if key not in METADATA_KINDS:
        raise ValueError(f"unknown filter operator or field name {key!r} (the fields are ChunkMetadata's)")
    if not isinstance(value, Mapping):
        value = {"$eq": value}
    if len(value) != 1:
        raise ValueError(f"the filter on {key!r} needs exactly one operator, got {value!r}")
    (op, operand), = value.items()
    if op in _COMPARISONS:
        literal = _literal(key, operand)
        if op == "$ne":
            return f"({key} is null or {key} != {literal})"
        return f"({key} {_COMPARISONS[op]} {literal})"
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise ValueError(f"{op} on {key!r} takes a list, got {operand!r}")
        items = "[" + ", ".join(_literal(key, item) for item in operand) + "]"
        return f"({key} is null or {key} not in {items})" if op == "$nin" else f"({key} in {items})"
    raise ValueError(f"unknown filter operator {op!r} on {key!r}")


def _literal(key: str, value: Any) -> str:
    """``value`` written in a Milvus expression, checked against the type of the field ``key``."""
    kind = METADATA_KINDS[key]
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool and isinstance(value, bool):
        return "true" if value else "false"
    if kind in (int, float) and numeric:
        if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            value = float(value)  # beyond 64 bits: compared as a float, as in rag.chunkstore
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"the filter on {key!r} compares with a finite number, got {value!r}")
        return repr(value)
    if kind is str and isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise ValueError(f"the filter on {key!r} compares with a {kind.__name__}, got {value!r}")


def _ids_filter(ids: Iterable[str]) -> str:
    return "id in " + json.dumps(list(ids), ensure_ascii=False)


class MilvusBackend:
    """A ``rag.backend.RetrievalBackend`` on Milvus (a server, or Milvus Lite for a ``.db`` path); the collection is
    made on the first ``add`` (the vectors' width is known then).

    >>> backend = MilvusBackend("http://milvus.internal:19530", "documents", token=settings.secret("milvus_token"))
    >>> backend.search_dense(vector, 30, where={"source": {"$in": ["ley.pdf"]}})
    """

    def __init__(self, uri: str, collection: str = "documents", token: str | None = None,
                 heading_weight: float = 0.0, heading_terms: int = 0, connect_timeout_s: float = 5.0) -> None:
        if connect_timeout_s <= 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {connect_timeout_s}")
        self.lite = "://" not in uri and not uri.startswith("unix:")
        if self.lite and not uri.endswith(".db"):
            raise ValueError(f"a Milvus Lite path must end in .db (a URL names a server), got {uri!r}")
        self.uri = _without_credentials(uri)
        self.name = milvus_name(collection)
        self.heading_weight, self.heading_terms = heading_weight, heading_terms
        # Embeds section headings for the window vectors, as ``DocumentIndex.embed_headings``.
        self.embed_headings: Callable[[list[str]], np.ndarray] | None = None
        # Writers hold it while they change the collection: a lock of this process only (see the module docstring).
        self.lock = threading.RLock()
        self.legacy = False  # the model is recorded from the first add on: no index predates it
        self.damaged: list[str] = []  # nothing is read from local files that could be found unreadable
        self._analyzers = {lang: Analyzer(lang, canonical=True) for lang in SUPPORTED_LANGUAGES}
        self.client = self._connect(uri, token, connect_timeout_s)
        self._ready = False  # whether the collection exists (and is loaded)

    @classmethod
    def from_settings(cls, settings: Settings) -> MilvusBackend:
        """``RAG_MILVUS_URI`` (default ``<index_dir>/milvus.db``, Milvus Lite), ``RAG_MILVUS_TOKEN``, and the
        collection and window settings the local index takes."""
        uri = settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")
        return cls(uri, settings.collection, token=settings.secret("milvus_token"),
                   heading_weight=settings.window_heading_weight, heading_terms=settings.window_heading_terms)

    def _connect(self, uri: str, token: str | None, timeout_s: float) -> MilvusClient:
        options: dict[str, Any] = {}
        if self.lite:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            # Milvus Lite listens on 127.0.0.1: never through an http_proxy the environment names.
            options["grpc_options"] = {"grpc.enable_http_proxy": 0}
        try:
            return MilvusClient(uri=uri, token=token or "", timeout=timeout_s, **options)
        except MilvusException as exc:
            reason = getattr(exc, "message", None) or str(exc)
            if self.lite:
                reason += " (Milvus Lite serves one process per .db folder: is another process using it?)"
            raise MilvusUnavailable(self.uri, reason) from None

    def close(self) -> None:
        self.client.close()

    # --- the collection ------------------------------------------------------------------------------------------

    def _exists(self) -> bool:
        if not self._ready and self.client.has_collection(self.name):
            self.client.load_collection(self.name)
            self._ready = True
        return self._ready

    def _create(self, dim: int, model_id: str | None) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=_MAX_VARCHAR)
        schema.add_field("text", DataType.VARCHAR, max_length=_MAX_VARCHAR)
        for terms, match in (("terms", True), ("window_terms", False)):  # idf counts the sentence units' terms
            schema.add_field(terms, DataType.VARCHAR, max_length=_MAX_VARCHAR, enable_analyzer=True,
                             enable_match=match, analyzer_params={"tokenizer": "standard"})
        for sparse in ("sparse", "window_sparse"):
            schema.add_field(sparse, DataType.SPARSE_FLOAT_VECTOR)
        for vector in ("vector", "window_vector"):
            schema.add_field(vector, DataType.FLOAT_VECTOR, dim=dim)
        types = {bool: DataType.BOOL, int: DataType.INT64, float: DataType.DOUBLE, str: DataType.VARCHAR}
        for name, kind in METADATA_KINDS.items():
            extra = {"max_length": _MAX_VARCHAR} if kind is str else {}
            schema.add_field(name, types[kind], nullable=True, **extra)
        for terms, sparse in (("terms", "sparse"), ("window_terms", "window_sparse")):
            schema.add_function(Function(name=f"{sparse}_bm25", function_type=FunctionType.BM25,
                                         input_field_names=[terms], output_field_names=[sparse]))
        index = self.client.prepare_index_params()
        for vector in ("vector", "window_vector"):
            index.add_index(vector, index_type="FLAT", metric_type="COSINE")
        for sparse in ("sparse", "window_sparse"):
            index.add_index(sparse, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25_PARAMS)
        for name in _SCALAR_INDEXED:
            index.add_index(name, index_type="INVERTED")
        properties = {MODEL_PROPERTY: model_id} if model_id else {}
        # Strong: a question right after an ingest (or a count in a test) sees every write before it.
        self.client.create_collection(self.name, schema=schema, consistency_level="Strong", properties=properties)
        # Milvus Lite builds an index at once; waiting for it as for a server's cost 0.5 s per index (it polls
        # with a call Lite 3.2.2 does not implement, each logged as an error).
        self.client.create_index(self.name, index, sync=not self.lite)
        self.client.load_collection(self.name)
        self._ready = True

    @property
    @_reachable
    def vector_model(self) -> str | None:
        """Id of the model that made the stored vectors (None: no collection yet); read from Milvus each time,
        so that another process's re-ingest with another model is seen."""
        if not self._exists():
            return None
        return self.client.describe_collection(self.name).get("properties", {}).get(MODEL_PROPERTY)

    @_reachable
    def drop(self) -> None:
        """Delete the Milvus collection (a deleted ``rag`` collection)."""
        with self.lock:
            if self.client.has_collection(self.name):
                self.client.drop_collection(self.name)
            self._ready = False

    # --- writes --------------------------------------------------------------------------------------------------

    def analyzer(self, language: str | None) -> Analyzer:
        return self._analyzers.get(language or "en", self._analyzers["en"])

    @_reachable
    def add(self, chunks: list[Chunk], embeddings: np.ndarray, model_id: str | None = None,
            windows: np.ndarray | None = None) -> None:
        """Store (or replace) ``chunks`` with their vectors, their window vectors and both units' terms.
        ``windows``: the window vectors as another index derived them (``rag.migrate`` copies a local index's),
        else derived here from ``chunks`` (a sentence's window needs its document's neighbours among them)."""
        if not chunks:
            return
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape[0] != len(chunks):
            raise ValueError(f"{len(chunks)} chunks but {embeddings.shape[0]} vectors")
        if windows is None:
            _, windows = window_units(chunks, embeddings, self._heading_vectors(chunks), self.heading_weight)
        elif np.shape(windows) != embeddings.shape:
            raise ValueError(f"{embeddings.shape} vectors but {np.shape(windows)} window vectors")
        else:
            windows = np.asarray(windows, dtype=np.float32)
        rows = [self._row(c, v, w) for c, v, w in zip(chunks, embeddings, windows, strict=True)]
        with self.lock:
            if not self._exists():
                self._create(embeddings.shape[1], model_id)
            elif model_id is not None and self.vector_model != model_id:
                self.client.alter_collection_properties(self.name, properties={MODEL_PROPERTY: model_id})
            for start in range(0, len(rows), _BATCH):
                self.client.upsert(self.name, rows[start:start + _BATCH])

    def _row(self, chunk: Chunk, vector: np.ndarray, window: np.ndarray) -> dict[str, Any]:
        analyzer = self.analyzer(chunk.metadata.language)
        # The window unit's terms: its window's (a chunk without one: its own), then its heading's
        # ``heading_terms`` times: DocumentIndex._window_terms.
        window_terms = analyzer.terms(chunk.metadata.window or chunk.text)
        if self.heading_terms and chunk.metadata.section:
            window_terms += analyzer.terms(chunk.metadata.section) * self.heading_terms
        row: dict[str, Any] = {name: None for name in METADATA_KINDS}
        row.update(chunk.metadata.to_store())
        row.update(id=chunk.id, text=chunk.text, terms=" ".join(analyzer.terms(chunk.text)),
                   window_terms=" ".join(window_terms), vector=vector.tolist(), window_vector=window.tolist())
        for name, value in row.items():
            if isinstance(value, str) and len(value.encode("utf-8")) > _MAX_VARCHAR:
                raise ValueError(f"chunk {chunk.id}: its {name} is longer than Milvus's {_MAX_VARCHAR} bytes")
        return row

    def _heading_vectors(self, chunks: list[Chunk]) -> dict[str, np.ndarray]:
        return heading_vectors(chunks, self.heading_weight, self.embed_headings)

    @_reachable
    def delete(self, ids: list[str]) -> None:
        """Remove chunks, both of their units at once (one row holds them)."""
        with self.lock:
            if ids and self._exists():
                for start in range(0, len(ids), _BATCH):
                    self.client.delete(self.name, ids=list(ids[start:start + _BATCH]))

    @_reachable
    def save(self, vectors: bool = True) -> None:
        """Milvus persists every write; this only flushes what it buffers."""
        with self.lock:
            if self._exists():
                self.client.flush(self.name)

    # --- reads ---------------------------------------------------------------------------------------------------

    @_reachable
    def count(self) -> int:
        if not self._exists():
            return 0
        return int(self.client.query(self.name, filter="", output_fields=["count(*)"])[0]["count(*)"])

    @_reachable
    def ids(self) -> list[str]:
        """Every stored chunk's id, paged through (the repair compares them with the manifest)."""
        if not self._exists():
            return []
        rows = self.client.query(self.name, filter='id != ""', output_fields=["id"], limit=_MAX_TOPK)
        if len(rows) < _MAX_TOPK:  # one query (an iterator logs a warning per use on Milvus Lite)
            return [row["id"] for row in rows]
        found: list[str] = []
        pages = self.client.query_iterator(self.name, batch_size=_MAX_TOPK // 4, filter='id != ""',
                                           output_fields=["id"])
        try:
            while batch := pages.next():
                found.extend(row["id"] for row in batch)
        finally:
            pages.close()
        return found

    def windowed(self) -> bool:
        """Whether sentence-window units are indexed: every row holds its chunk's window unit."""
        return self.count() > 0

    @_reachable
    def get(self, ids: list[str]) -> dict[str, Chunk]:
        """The stored chunks of ``ids`` (ids not stored are left out)."""
        if not ids or not self._exists():
            return {}
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Chunk] = {}
        for start in range(0, len(wanted), _BATCH):
            rows = self.client.query(self.name, ids=wanted[start:start + _BATCH],
                                     output_fields=["text", *METADATA_KINDS])
            for row in rows:
                meta = {k: row[k] for k in METADATA_KINDS if row.get(k) is not None}
                found[row["id"]] = Chunk(row["id"], row["text"], ChunkMetadata.from_store(meta))
        return found

    @_reachable
    def allowed(self, where: Mapping[str, Any]) -> set[str]:
        """The ids of the chunks whose metadata ``where`` lets through (Chroma's filter syntax, see
        ``milvus_filter``)."""
        expression = milvus_filter(where)
        if not self._exists():
            return set()
        rows = self.client.query(self.name, filter=expression, output_fields=["id"], limit=_MAX_TOPK)
        if len(rows) < _MAX_TOPK:
            return {row["id"] for row in rows}
        found: set[str] = set()  # more than one query can return: page through them
        pages = self.client.query_iterator(self.name, batch_size=_MAX_TOPK // 4, filter=expression,
                                           output_fields=["id"])
        try:
            while batch := pages.next():
                found.update(row["id"] for row in batch)
        finally:
            pages.close()
        return found

    def search_dense(self, vector: np.ndarray, n: int, allowed: set[str] | None = None, windows: bool = False,
                     approximate: bool = False, where: Mapping[str, Any] | str | None = None,
                     ) -> list[tuple[str, float]]:
        """Nearest chunks (or sentence windows) by cosine, best first; ``allowed`` restricts the ids, ``where`` the
        metadata on Milvus's side (a Chroma ``where`` or a Milvus expression). ``approximate``: see the module."""
        query = np.asarray(vector, dtype=np.float32).tolist()
        return self._search([query], "window_vector" if windows else "vector", "COSINE", n, allowed, where)

    def search_bm25(self, terms: list[str], n: int, allowed: set[str] | None = None, windows: bool = False,
                    where: Mapping[str, Any] | str | None = None) -> list[tuple[str, float]]:
        """Chunks (or sentence windows) by Milvus's BM25 over ``terms`` (an ``analyzer``'s), best first, ties by
        id; ``allowed`` and ``where`` as in ``search_dense``."""
        if not terms:
            return []
        found = self._search([" ".join(terms)], "window_sparse" if windows else "sparse", "BM25", n, allowed, where)
        # Milvus Lite 3.2.2 reports BM25 scores negated (its internal distance); a server reports them as they are.
        return sorted(((cid, abs(score)) for cid, score in found if score), key=lambda hit: (-hit[1], hit[0]))

    @_reachable
    def _search(self, data: list, field: str, metric: str, n: int, allowed: set[str] | None,
                where: Mapping[str, Any] | str | None) -> list[tuple[str, float]]:
        if n < 1 or (allowed is not None and not allowed) or not self._exists():
            return []
        parts = [where if isinstance(where, str) else milvus_filter(where)] if where else []
        if allowed is not None:
            parts.append(_ids_filter(sorted(allowed)))
        expression = " and ".join(f"({part})" for part in parts)
        hits = self.client.search(self.name, data=data, anns_field=field, limit=min(n, _MAX_TOPK),
                                  filter=expression, search_params={"metric_type": metric}, output_fields=["id"])
        return [(hit["id"], float(hit["distance"])) for hit in hits[0]]

    @_reachable
    def idf(self, terms: list[str]) -> dict[str, float]:
        """Each term's idf as Milvus's BM25 weighs it, ``log(1 + (N - df + 0.5) / (df + 0.5))``; a term no chunk
        holds gets the mean idf of the known ones, as locally (``rag.bm25.BM25Index.idf``)."""
        total = self.count()
        if not total:
            return {t: 1.0 for t in terms}
        counts = {}
        for term in dict.fromkeys(terms):
            rows = self.client.query(self.name, filter=f"text_match(terms, {json.dumps(term, ensure_ascii=False)})",
                                     output_fields=["count(*)"])
            counts[term] = int(rows[0]["count(*)"])
        known = {t: math.log(1 + (total - df + 0.5) / (df + 0.5)) for t, df in counts.items() if df}
        typical = sum(known.values()) / len(known) if known else 1.0
        return {t: known.get(t, typical) for t in terms}


def _without_credentials(uri: str) -> str:
    """``uri`` as errors and logs may show it: a ``user:password@`` in it replaced by ``***@``."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
