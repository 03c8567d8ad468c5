"""Fixed-size chunking: consecutive sentences packed up to a token budget."""

from __future__ import annotations

from ingest.chunkers.base import ChunkDraft, TokenCounter, pack, sentences_of, table_chunks
from rag.types import Element


class FixedSizeChunker:
    """Packs whole sentences into chunks of at most ``max_tokens`` embedder tokens."""

    name = "fixed"

    def __init__(self, count_tokens: TokenCounter, max_tokens: int = 200) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens

    def params(self) -> dict[str, object]:
        return {"max_tokens": self.max_tokens}

    def split(self, elements: list[Element]) -> list[ChunkDraft]:
        sentences = sentences_of(elements, self.max_tokens, self.count_tokens)
        return pack(sentences, self.count_tokens, self.max_tokens) + table_chunks(elements, self.max_tokens,
                                                                                 self.count_tokens)
