"""Chunkers: turn parsed elements into retrieval units. Chosen by ``Settings.chunker``."""

from ingest.chunkers.base import ChunkDraft, Chunker, TokenCounter
from ingest.chunkers.double_pass import DoublePassMergingChunker
from ingest.chunkers.fixed import FixedSizeChunker
from ingest.chunkers.semantic import Embed, SemanticChunker
from ingest.chunkers.sentence_window import SentenceWindowChunker
from rag.settings import Settings

__all__ = ["ChunkDraft", "Chunker", "DoublePassMergingChunker", "FixedSizeChunker", "SemanticChunker",
           "SentenceWindowChunker", "TokenCounter", "make_chunker"]


def make_chunker(settings: Settings, count_tokens: TokenCounter, embed: Embed) -> Chunker:
    size = settings.chunk_max_tokens
    if settings.chunker == "sentence-window":
        return SentenceWindowChunker(count_tokens, window=settings.window_sentences, max_tokens=size)
    if settings.chunker == "fixed":
        return FixedSizeChunker(count_tokens, max_tokens=size)
    if settings.chunker == "semantic":
        return SemanticChunker(embed, count_tokens, breakpoint_percentile=settings.semantic_percentile,
                               max_tokens=size)
    return DoublePassMergingChunker(embed, count_tokens, initial_threshold=settings.dp_initial_threshold,
                                    appending_threshold=settings.dp_appending_threshold,
                                    merging_threshold=settings.dp_merging_threshold,
                                    merging_range=settings.dp_merging_range, max_tokens=size)
