"""Chunkers: turn parsed elements into retrieval units. Chosen by ``Settings.chunker``."""

from ingest.chunkers.base import Chunker, ChunkDraft, TokenCounter
from ingest.chunkers.fixed import FixedSizeChunker
from ingest.chunkers.sentence_window import SentenceWindowChunker
from rag.settings import Settings

__all__ = ["ChunkDraft", "Chunker", "FixedSizeChunker", "SentenceWindowChunker", "TokenCounter", "make_chunker"]


def make_chunker(settings: Settings, count_tokens: TokenCounter) -> Chunker:
    if settings.chunker == "sentence-window":
        return SentenceWindowChunker(count_tokens, window=settings.window_sentences,
                                     max_tokens=settings.chunk_max_tokens)
    if settings.chunker == "fixed":
        return FixedSizeChunker(count_tokens, max_tokens=settings.chunk_max_tokens)
    raise ValueError(f"chunker {settings.chunker!r} is not available yet (choose 'sentence-window' or 'fixed')")
