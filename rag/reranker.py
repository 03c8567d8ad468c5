"""Re-ranking of retrieved candidates: a cross-encoder when one is on disk.

The default cross-encoder is ``BAAI/bge-reranker-base``; no reranker ships on PyPI, so it is read
from a configured folder or the Hugging Face cache, never downloaded. When none can be loaded the
pipeline keeps the fused order (``RAG_RERANKER_FALLBACK=none``, the default) or re-scores candidates
with the embedder (``embedder``), and says so once in the log and in every answer's trace
(``reranker`` / ``reranker_fallback``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.analysis import detect_language
from rag.embedder import Embedder, similarities
from rag.offline import ensure_offline
from rag.types import ScoredChunk

log = logging.getLogger(__name__)


@runtime_checkable
class Reranker(Protocol):
    """Re-scores candidates for a query; returns them best first with the new scores."""

    name: str

    def rerank(self, query: str, hits: list[ScoredChunk]) -> list[ScoredChunk]: ...


def _ordered(hits: list[ScoredChunk], scores: np.ndarray, stage: str) -> list[ScoredChunk]:
    rescored = [ScoredChunk(h.chunk, float(s), {**h.ranks}) for h, s in zip(hits, scores, strict=True)]
    rescored.sort(key=lambda h: (-h.score, h.chunk.id))
    return [ScoredChunk(h.chunk, h.score, {**h.ranks, stage: rank}) for rank, h in enumerate(rescored, start=1)]


# huggingface_hub's rule for a repo id ("name" or "namespace/name", utils/_validators.py).
_REPO_ID = re.compile(r"(\b[\w\-.]{1,96}\b/)?\b[\w\-.]{1,96}\b", re.ASCII)


def _hf_hub_cache() -> Path:
    """The Hugging Face cache folder, found as huggingface_hub finds it (``constants.py``): ``HF_HUB_CACHE``, else
    the legacy ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub`` (``HF_HOME`` defaults to
    ``$XDG_CACHE_HOME/huggingface``, ``~/.cache/huggingface``)."""
    def expand(value: str) -> str:
        return os.path.expandvars(os.path.expanduser(value))

    home = expand(os.getenv("HF_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                                    "huggingface")))
    return Path(expand(os.getenv("HF_HUB_CACHE", os.getenv("HUGGINGFACE_HUB_CACHE", os.path.join(home, "hub")))))


def _on_disk(model: str) -> bool:
    """A folder, or a model id whose config the Hugging Face cache holds. Looked up by paths alone: a one-off
    ``rag ask`` paid 0.15-0.5 s for importing huggingface_hub to learn that the default cross-encoder is absent
    (issue 41). Answers as ``huggingface_hub.try_to_load_from_cache(model, "config.json")`` does (the tests compare
    them): the snapshot that ``refs/main`` names, not any snapshot, since loading offline resolves ``main`` so."""
    path = Path(model).expanduser()
    if path.is_dir() or path.is_absolute() or model.startswith((".", "~")):
        return path.is_dir()
    if (model.count("/") > 1 or not _REPO_ID.fullmatch(model) or "--" in model or ".." in model
            or model.endswith(".git")):
        return True  # not a valid repo id: sentence-transformers says why
    repo = _hf_hub_cache() / ("models--" + model.replace("/", "--"))
    revision = "main"
    with contextlib.suppress(OSError):
        revision = (repo / "refs" / "main").read_text()
    if (repo / ".no_exist" / revision / "config.json").is_file():  # the Hub said it has no such file
        return False
    return (repo / "snapshots" / revision / "config.json").is_file()


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` read from a folder or the HF cache (offline).

    >>> CrossEncoderReranker("/models/bge-reranker-base").rerank("dosis", hits)[0].score
    """

    def __init__(self, model: str | Path, batch_size: int = 16, max_length: int = 512) -> None:
        self.model_name = str(model)
        self.name = f"cross-encoder:{Path(self.model_name).name or self.model_name}"
        self.batch_size = batch_size
        self.max_length = max_length
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load now; raises OSError/ValueError when the model is neither a folder nor in the cache."""
        with self._lock:
            if self._model is None:
                ensure_offline()
                if not _on_disk(self.model_name):  # known before importing sentence-transformers (5-10 s)
                    raise OSError(f"{self.model_name!r} is neither a folder nor in the Hugging Face cache")
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(self.model_name, max_length=self.max_length, device="cpu",
                                           local_files_only=True)

    def rerank(self, query: str, hits: list[ScoredChunk]) -> list[ScoredChunk]:
        if not hits:
            return []
        self.load()
        scores = self._model.predict([(query, h.chunk.text) for h in hits], batch_size=self.batch_size,
                                     show_progress_bar=False)
        return _ordered(hits, np.asarray(scores, dtype=np.float64).reshape(len(hits)), "rerank")


class KeptOrder:
    """No re-ranking model: the fused order stands (each candidate gets its ``rerank`` rank all the same)."""

    name = "none"

    def rerank(self, query: str, hits: list[ScoredChunk]) -> list[ScoredChunk]:
        return [ScoredChunk(h.chunk, h.score, {**h.ranks, "rerank": n}) for n, h in enumerate(hits, start=1)]


class EmbeddingReranker:
    """Fallback: the embedder's cosine between the query and each candidate's context (its sentence
    window when there is one), fused by reciprocal rank with the incoming order.

    The candidates' own texts were already ranked by the same embedder in dense retrieval, so a plain
    cosine re-sort would only replay it; the wider window adds evidence, and keeping the incoming order
    in the fusion keeps BM25's. Measured on XQuAD-en (612 dev queries, hybrid, sentence-window):
    NDCG@10 0.937 -> 0.959. Candidates without a wider window (fixed, semantic, double-pass chunks)
    keep their order: re-scoring them only counted the dense ranking twice (XQuAD-en NDCG@10 fixed
    0.963 -> 0.956, semantic 0.962 -> 0.957, double-pass 0.937 -> 0.929). For queries in a language
    the embedder does not cover the order stays too (XQuAD-es with the English MiniLM: 0.864 -> 0.799
    otherwise).
    """

    def __init__(self, embedder: Embedder, languages: tuple[str, ...] = ("en",), k: int = 60) -> None:
        self.embedder = embedder
        self.languages = languages
        self.k = k
        self.name = "embedder"

    def rerank(self, query: str, hits: list[ScoredChunk]) -> list[ScoredChunk]:
        if not hits:
            return []
        wider = any(h.chunk.context_text != h.chunk.text for h in hits)
        if not wider or (self.languages and detect_language(query) not in self.languages):
            return KeptOrder().rerank(query, hits)
        cosine = similarities(self.embedder, query, [h.chunk.context_text for h in hits])
        order = np.argsort(-cosine, kind="stable")
        cosine_rank = np.empty(len(hits))
        cosine_rank[order] = np.arange(1, len(hits) + 1)
        fused = 1 / (self.k + np.arange(1, len(hits) + 1)) + 1 / (self.k + cosine_rank)
        return _ordered(hits, fused, "rerank")


def load_reranker(model: str | None, embedder: Embedder, languages: tuple[str, ...] = ("en",),
                  fallback: str = "none") -> tuple[Reranker, str | None]:
    """The configured cross-encoder, or the fallback (``none``: keep the fused order; ``embedder``:
    :class:`EmbeddingReranker`) and why (logged once here).

    ``languages``: the embedder's languages (the embedder fallback leaves other languages' order alone).
    """
    def fall_back(why: str) -> tuple[Reranker, str]:
        if fallback == "embedder":
            return EmbeddingReranker(embedder, languages), f"{why}; re-ranking with the embedder instead"
        return KeptOrder(), f"{why}; the fused order is kept (RAG_RERANKER_FALLBACK=embedder re-scores with the embedder)"

    if not model:
        return fall_back("no cross-encoder configured (RAG_RERANKER_MODEL)")
    reranker = CrossEncoderReranker(model)
    try:
        reranker.load()
    except Exception as exc:  # noqa: BLE001 - missing folder, not in cache, broken files: all fall back
        chosen, reason = fall_back(f"cross-encoder {model!r} not found on disk or in the Hugging Face cache "
                                   f"({type(exc).__name__})")
        log.warning(reason)
        return chosen, reason
    return reranker, None
