"""Semantic chunking: split where the meaning shifts between consecutive sentence groups.

Each sentence is represented together with ``buffer`` neighbours on each side (Kamradt's recipe, as
in LlamaIndex's SemanticSplitterNodeParser, but from sentence embeddings computed once instead of
re-embedding every overlapping window); a breakpoint falls where the cosine distance between
consecutive groups is above the ``breakpoint_percentile``-th percentile of all such distances.
Chunks never exceed ``max_tokens`` embedder tokens: an over-long run is packed greedily.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ingest.chunkers.base import ChunkDraft, Sentence, TokenCounter, pack, sentences_of, table_chunks
from rag.types import Element

Embed = Callable[[list[str]], np.ndarray]


class SemanticChunker:
    name = "semantic"

    def __init__(self, embed: Embed, count_tokens: TokenCounter, breakpoint_percentile: float = 95.0,
                 buffer: int = 1, max_tokens: int = 200) -> None:
        if not 0 < breakpoint_percentile < 100:
            raise ValueError(f"breakpoint_percentile must be in (0, 100), got {breakpoint_percentile}")
        if buffer < 0:
            raise ValueError(f"buffer must be >= 0, got {buffer}")
        self.embed = embed
        self.count_tokens = count_tokens
        self.breakpoint_percentile = breakpoint_percentile
        self.buffer = buffer
        self.max_tokens = max_tokens

    def params(self) -> dict[str, object]:
        return {"breakpoint_percentile": self.breakpoint_percentile, "buffer": self.buffer,
                "max_tokens": self.max_tokens}

    def split(self, elements: list[Element]) -> list[ChunkDraft]:
        sentences = sentences_of(elements, self.max_tokens, self.count_tokens)
        drafts: list[ChunkDraft] = []
        for group in self._groups(sentences):
            drafts.extend(pack(group, self.count_tokens, self.max_tokens))
        return drafts + table_chunks(elements, self.max_tokens, self.count_tokens)

    def _groups(self, sentences: list[Sentence]) -> list[list[Sentence]]:
        if len(sentences) < 3:
            return [sentences] if sentences else []
        # Each sentence is embedded once; a window's vector is the normalised mean of its sentences'
        # vectors (embedding every overlapping window as text costs ~2 * buffer + 1 times more).
        sentence_vectors = self.embed([s.text for s in sentences])
        sums = np.cumsum(np.vstack([np.zeros_like(sentence_vectors[:1]), sentence_vectors]), axis=0)
        n = len(sentences)
        lo = np.clip(np.arange(n) - self.buffer, 0, n)
        hi = np.clip(np.arange(n) + self.buffer + 1, 0, n)
        vectors = sums[hi] - sums[lo]
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        distances = 1.0 - np.sum(vectors[:-1] * vectors[1:], axis=1)
        threshold = np.percentile(distances, self.breakpoint_percentile)
        groups, start = [], 0
        for i, distance in enumerate(distances):
            if distance > threshold:
                groups.append(sentences[start:i + 1])
                start = i + 1
        groups.append(sentences[start:])
        return [g for g in groups if g]
