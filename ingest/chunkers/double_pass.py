"""Semantic double-pass merging, after LlamaIndex's SemanticDoubleMergingSplitterNodeParser.

First pass: grow a chunk sentence by sentence. The second sentence joins the first only if their
similarity reaches ``initial_threshold``; later sentences join while their similarity to the last
two sentences of the chunk reaches ``appending_threshold``. Second pass: merge neighbouring chunks
whose similarity reaches ``merging_threshold``, and with ``merging_range`` 1 or 2 bridge one or two
dissimilar chunks when the chunk after them is similar.

Where the reference is known to fail, this one differs: similarity is the cosine of the mean of the
*sentence embeddings* already computed once (the reference re-embeds the growing text at every
comparison, with spaCy vectors after removing English stopwords, which is wrong for Spanish), and
the size limit is in embedder tokens and always enforced (the reference lets long sentences through).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.chunkers.base import ChunkDraft, Sentence, TokenCounter, draft_of, sentences_of, table_chunks
from ingest.chunkers.semantic import Embed
from rag.types import Element


@dataclass
class _Run:
    """Consecutive sentences with their summed embedding (the centroid is sum / |sum|)."""

    sentences: list[Sentence]
    vectors: list[np.ndarray]
    tokens: int

    def centroid(self, last: int | None = None) -> np.ndarray:
        vecs = self.vectors if last is None else self.vectors[-last:]
        total = np.sum(vecs, axis=0)
        return total / (np.linalg.norm(total) or 1.0)


class DoublePassMergingChunker:
    name = "double-pass"

    def __init__(self, embed: Embed, count_tokens: TokenCounter, initial_threshold: float = 0.6,
                 appending_threshold: float = 0.8, merging_threshold: float = 0.8, merging_range: int = 1,
                 max_tokens: int = 200) -> None:
        if merging_range not in (1, 2):
            raise ValueError(f"merging_range must be 1 or 2, got {merging_range}")
        for name, value in (("initial_threshold", initial_threshold), ("appending_threshold", appending_threshold),
                            ("merging_threshold", merging_threshold)):
            if not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a cosine similarity in [-1, 1], got {value}")
        self.embed = embed
        self.count_tokens = count_tokens
        self.initial_threshold = initial_threshold
        self.appending_threshold = appending_threshold
        self.merging_threshold = merging_threshold
        self.merging_range = merging_range
        self.max_tokens = max_tokens

    def params(self) -> dict[str, object]:
        return {"initial_threshold": self.initial_threshold, "appending_threshold": self.appending_threshold,
                "merging_threshold": self.merging_threshold, "merging_range": self.merging_range,
                "max_tokens": self.max_tokens}

    def split(self, elements: list[Element]) -> list[ChunkDraft]:
        sentences = sentences_of(elements, self.max_tokens, self.count_tokens)
        if not sentences:
            return table_chunks(elements, self.max_tokens, self.count_tokens)
        vectors = self.embed([s.text for s in sentences])
        # +1 per sentence for the joining space, which can add a word piece.
        sizes = [n + 1 for n in self.count_tokens([s.text for s in sentences])]
        runs = self._first_pass(sentences, list(vectors), sizes)
        merged = self._second_pass(runs)
        return [draft_of(r.sentences) for r in merged] + table_chunks(elements, self.max_tokens, self.count_tokens)

    def _fits(self, *runs: _Run) -> bool:
        return sum(r.tokens for r in runs) <= self.max_tokens

    def _first_pass(self, sentences: list[Sentence], vectors: list[np.ndarray], sizes: list[int]) -> list[_Run]:
        runs: list[_Run] = []
        current = _Run([sentences[0]], [vectors[0]], sizes[0])
        for sentence, vector, size in zip(sentences[1:], vectors[1:], sizes[1:], strict=True):
            one = _Run([sentence], [vector], size)
            threshold = self.initial_threshold if len(current.sentences) == 1 else self.appending_threshold
            if self._fits(current, one) and float(current.centroid(last=2) @ vector) >= threshold:
                current.sentences.append(sentence)
                current.vectors.append(vector)
                current.tokens += size
            else:
                runs.append(current)
                current = one
        runs.append(current)
        return runs

    def _second_pass(self, runs: list[_Run]) -> list[_Run]:
        merged: list[_Run] = []
        current = runs[0]
        i = 1
        while i < len(runs):
            joined = False
            for reach in range(0, self.merging_range + 1):  # 0: the next chunk; 1, 2: bridge that many
                if i + reach >= len(runs):
                    break
                candidate = runs[i + reach]
                bridge = runs[i:i + reach + 1]
                if self._fits(current, *bridge) and float(current.centroid() @ candidate.centroid()) >= self.merging_threshold:
                    for run in bridge:
                        current = _Run(current.sentences + run.sentences, current.vectors + run.vectors,
                                       current.tokens + run.tokens)
                    i += reach + 1
                    joined = True
                    break
            if not joined:
                merged.append(current)
                current = runs[i]
                i += 1
        merged.append(current)
        return merged
