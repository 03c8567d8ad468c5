"""Fixed-size chunking: consecutive sentences packed up to a token budget."""

from __future__ import annotations

from ingest.chunkers.base import ChunkDraft, Sentence, TokenCounter, sentences_of, table_chunks
from rag.types import Element, ElementType


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
        sizes = self.count_tokens([s.text for s in sentences]) if sentences else []
        drafts: list[ChunkDraft] = []
        group: list[Sentence] = []
        used = 0
        for sentence, size in zip(sentences, sizes, strict=True):
            # +1 per sentence for the joining space, which can add a word piece.
            if group and used + size + 1 > self.max_tokens:
                drafts.append(_draft(group))
                group, used = [], 0
            group.append(sentence)
            used += size + 1
        if group:
            drafts.append(_draft(group))
        return drafts + table_chunks(elements, self.max_tokens, self.count_tokens)


def _draft(group: list[Sentence]) -> ChunkDraft:
    pages = [s.page for s in group if s.page is not None]
    kinds = {s.element_type for s in group}
    kind = kinds.pop() if len(kinds) == 1 else ElementType.TEXT
    return ChunkDraft(" ".join(s.text for s in group), min(pages, default=None), max(pages, default=None), kind,
                      group[0].section)
