"""Sentence-window chunking: one sentence per retrieval unit, its neighbours kept for generation."""

from __future__ import annotations

from ingest.chunkers.base import ChunkDraft, TokenCounter, sentences_of, table_chunks
from rag.types import Element


class SentenceWindowChunker:
    """Each sentence is embedded alone (precise retrieval); ``window`` holds the ±k sentences around it.

    >>> SentenceWindowChunker(count_tokens, window=2).split(elements)[0].window
    """

    name = "sentence-window"

    def __init__(self, count_tokens: TokenCounter, window: int = 2, max_tokens: int = 200) -> None:
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
        self.count_tokens = count_tokens
        self.window = window
        self.max_tokens = max_tokens

    def params(self) -> dict[str, object]:
        return {"window": self.window, "max_tokens": self.max_tokens}

    def split(self, elements: list[Element]) -> list[ChunkDraft]:
        sentences = sentences_of(elements, self.max_tokens, self.count_tokens)
        drafts = []
        for i, sentence in enumerate(sentences):
            lo, hi = max(0, i - self.window), min(len(sentences), i + self.window + 1)
            window = " ".join(s.text for s in sentences[lo:hi])
            drafts.append(ChunkDraft(sentence.text, sentence.page, sentence.page, sentence.element_type,
                                     sentence.section, window=window))
        return drafts + table_chunks(elements, self.max_tokens, self.count_tokens)
