"""Sentence-window chunking: one sentence per retrieval unit, its neighbours kept for generation."""

from __future__ import annotations

from ingest.chunkers.base import ChunkDraft, TokenCounter, sentences_of, table_chunks
from rag.enumeration import GAP, lead_ins
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
        leads = lead_ins([s.text for s in sentences])
        drafts = []
        for i, (sentence, lead) in enumerate(zip(sentences, leads, strict=True)):
            lo, hi = max(0, i - self.window), min(len(sentences), i + self.window + 1)
            window = " ".join(s.text for s in sentences[lo:hi])
            if lead and lead not in window:
                # A list item far from its lead-in: the window (what the window retrievers and the answer read)
                # starts with the lead-in, so that a question worded like the lead-in finds the item.
                window = f"{lead}{GAP}{window}"
            drafts.append(ChunkDraft(sentence.text, sentence.page, sentence.page, sentence.element_type,
                                     sentence.section, window=window, lead_in=lead))
        return drafts + table_chunks(elements, self.max_tokens, self.count_tokens)
