"""Dense storage: chunks, their metadata and embeddings in a Chroma collection.

Chroma never embeds anything here: the collection has no embedding function and every add and
query passes vectors computed by our ``Embedder``, so Chroma cannot load (or download) a model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from rag.offline import ensure_offline
from rag.types import Chunk, ChunkMetadata

log = logging.getLogger(__name__)

# Chroma rejects very large single requests; adds and deletes are sent in slices of this size.
_MAX_BATCH = 4000


class ChromaStore:
    """A persistent (local folder) or remote (``chroma run``) Chroma collection, opened on first use: importing
    Chroma and loading a large collection cost seconds and gigabytes that a question answered from the exact
    search's files and ``rag.chunkstore`` never needs."""

    def __init__(self, path: Path | None = None, collection: str = "documents", url: str | None = None,
                 parent: ChromaStore | None = None) -> None:
        if parent is None and path is None and url is None:
            raise ValueError("ChromaStore needs a path or a url")
        if url and not urlparse(url).hostname:
            raise ValueError(f"chroma_url must look like http://host:port, got {url!r}")
        ensure_offline()
        self.name, self.path, self.url, self._parent = collection, path, url, parent
        self._client = None
        self._collection = None
        self._lock = threading.Lock()

    @property
    def client(self):
        if self._parent is not None:  # a sibling collection: the same client
            return self._parent.client
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    @property
    def collection(self):
        if self._collection is None:
            collection = self._open(self.name)
            with self._lock:
                self._collection = self._collection or collection
        return self._collection

    def exists(self) -> bool:
        """Whether there may be anything stored (a server, or a local folder already made), without opening it."""
        return self.url is not None or (self._parent.exists() if self._parent is not None else self.path.exists())

    def _connect(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if self.url:
            parsed = urlparse(self.url)
            return chromadb.HttpClient(host=parsed.hostname, port=parsed.port or 8000,
                                       ssl=parsed.scheme == "https", settings=chroma_settings)
        self.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self.path), settings=chroma_settings)

    def close(self) -> None:
        """Forget the client and collection (a repair moves an unreadable folder aside): the next use opens the
        folder anew. Chroma keeps one system per folder in a process-wide cache, and a system that failed to start
        on a damaged folder stays there and fails every later client of that path: this folder's entry goes too
        (other folders' clients are left alone)."""
        with self._lock:
            self._client, self._collection = None, None
        if self._parent is None and self.url is None and self.path is not None:
            from chromadb.api.shared_system_client import SharedSystemClient

            identifier = str(self.path)
            SharedSystemClient._identifier_to_system.pop(identifier, None)
            SharedSystemClient._identifier_to_refcount.pop(identifier, None)

    def _open(self, name: str):
        return self.client.get_or_create_collection(name=name, embedding_function=None,
                                                    metadata={"hnsw:space": "cosine"})

    def sibling(self, collection: str) -> ChromaStore:
        """Another collection of the same store, through the same client."""
        return ChromaStore(collection=collection, parent=self)

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        found = self.collection.get(ids=ids, include=["embeddings"])
        return {cid: np.asarray(vector, dtype=np.float32)
                for cid, vector in zip(found["ids"], found["embeddings"], strict=True)}

    def count(self) -> int:
        return self.collection.count()

    def drop(self) -> None:
        """Delete the whole collection from the store (a deleted ``rag`` collection)."""
        self.client.delete_collection(self.name)
        self._collection = None

    def add(self, chunks: list[Chunk], embeddings: np.ndarray, vectors_only: bool = False) -> None:
        """Store the chunks with their vectors; ``vectors_only``: ids and vectors alone (a collection searched
        only for ids, such as the window vectors: text and metadata stay in the chunks' collection, and
        Chroma's write costs about half)."""
        if len(chunks) != len(embeddings):
            raise ValueError(f"{len(chunks)} chunks but {len(embeddings)} embeddings")
        for start in range(0, len(chunks), _MAX_BATCH):
            part = chunks[start:start + _MAX_BATCH]
            vectors = embeddings[start:start + _MAX_BATCH].tolist()
            if vectors_only:
                self.collection.upsert(ids=[c.id for c in part], embeddings=vectors)
            else:
                self.collection.upsert(ids=[c.id for c in part], documents=[c.text for c in part],
                                       metadatas=[c.metadata.to_store() for c in part], embeddings=vectors)

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), _MAX_BATCH):
            self.collection.delete(ids=ids[start:start + _MAX_BATCH])

    def ids(self, where: dict[str, Any] | None = None) -> list[str]:
        return list(self.collection.get(where=where, include=[])["ids"])

    def get(self, ids: list[str]) -> dict[str, Chunk]:
        if not ids:
            return {}
        found = self.collection.get(ids=ids, include=["documents", "metadatas"])
        return {cid: Chunk(cid, doc, ChunkMetadata.from_store(meta))
                for cid, doc, meta in zip(found["ids"], found["documents"], found["metadatas"], strict=True)}

    def nearest(self, vector: np.ndarray, n: int, ids: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """Ids of the nearest vectors (among ``ids`` when given) with their cosine similarity, by Chroma's HNSW
        graph; reads no text or metadata (a vectors-only collection has none)."""
        total = self.count()
        if total == 0:
            return []
        found = self.collection.query(query_embeddings=[vector.tolist()], n_results=min(n, total),
                                      ids=list(ids) if ids is not None else None, include=["distances"])
        return [(cid, 1.0 - float(dist)) for cid, dist in zip(found["ids"][0], found["distances"][0], strict=True)]
