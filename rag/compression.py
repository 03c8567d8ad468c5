"""Context compression: fit the sources into the model's token budget, keeping what matters.

1. Overlapping sentence windows of the same document merge into one source (no sentence twice).
2. When the sources still exceed the budget, the sentences least similar to the question are
   dropped first, across sources; the retrieved sentence itself always stays. Table sources drop
   whole rows only and always keep their header row.
3. If that is not enough, the lowest-ranked sources are dropped whole.
Tokens are counted with the generator's own tokenizer when it has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from rag.analysis import split_sentences
from rag.embedder import Embedder
from rag.types import ElementType, ScoredChunk

# Tokens of a source's label and delimiters in the prompt ("[3] (file.pdf, page 4)\n<<<\n...\n>>>").
SOURCE_OVERHEAD_TOKENS = 16


@dataclass
class CompressionReport:
    tokens_before: int = 0
    tokens_after: int = 0
    budget: int = 0
    merged_windows: int = 0
    dropped_units: list[str] = field(default_factory=list)
    dropped_sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"tokens_before": self.tokens_before, "tokens_after": self.tokens_after, "budget": self.budget,
                "merged_windows": self.merged_windows, "dropped_units": len(self.dropped_units),
                "dropped_text": [u[:80] for u in self.dropped_units[:10]], "dropped_sources": self.dropped_sources}


@dataclass
class _Source:
    hit: ScoredChunk
    units: list[str]  # sentences, or for a table: header, separator, rows
    keep: list[bool]
    is_table: bool

    @property
    def header_end(self) -> int:
        """Units a table never drops: its title lines, header row and separator."""
        first = next((j for j, u in enumerate(self.units) if u.lstrip().startswith("|")), 0)
        return first + 2 if self.is_table else 0

    def text(self) -> str:
        kept = [u for u, k in zip(self.units, self.keep, strict=True) if k]
        return "\n".join(kept) if self.is_table else " ".join(kept)


def _units(hit: ScoredChunk) -> tuple[list[str], bool]:
    chunk = hit.chunk
    if chunk.metadata.element_type == ElementType.TABLE:
        lines = [ln for ln in chunk.context_text.splitlines() if ln.strip()]
        return lines, True
    return split_sentences(chunk.context_text) or [chunk.context_text], False


def merge_windows(sources: list[ScoredChunk]) -> tuple[list[ScoredChunk], int]:
    """Merge sources of the same document whose sentence windows share sentences (first one's rank)."""
    merged: list[tuple[ScoredChunk, list[str]]] = []
    count = 0
    for hit in sources:
        if not hit.chunk.metadata.window:
            merged.append((hit, []))
            continue
        sentences = split_sentences(hit.chunk.metadata.window)
        for i, (other, other_sentences) in enumerate(merged):
            if (other_sentences and other.chunk.metadata.doc_id == hit.chunk.metadata.doc_id
                    and set(sentences) & set(other_sentences)):
                first = next(j for j, s in enumerate(sentences) if s in other_sentences)
                union = sentences[:first] + other_sentences + [s for s in sentences[first:]
                                                               if s not in other_sentences]
                meta = replace(other.chunk.metadata, window=" ".join(union))
                merged[i] = (replace(other, chunk=replace(other.chunk, metadata=meta)), union)
                count += 1
                break
        else:
            merged.append((hit, sentences))
    return [hit for hit, _ in merged], count


class ContextCompressor:
    """Fits sources into a token budget.

    >>> ContextCompressor(embedder, generator.count_tokens).compress(question, hits, budget=1500)
    """

    def __init__(self, embedder: Embedder, count_tokens: Callable[[str], int]) -> None:
        self.embedder = embedder
        self.count_tokens = count_tokens

    def compress(self, question: str, sources: list[ScoredChunk],
                 budget: int) -> tuple[list[ScoredChunk], CompressionReport]:
        report = CompressionReport(budget=budget)
        sources, report.merged_windows = merge_windows(sources)
        parts = []
        for hit in sources:
            units, is_table = _units(hit)
            parts.append(_Source(hit, units, [True] * len(units), is_table))
        unit_tokens = [[self.count_tokens(u) for u in p.units] for p in parts]

        def total() -> int:
            return sum(SOURCE_OVERHEAD_TOKENS + sum(t for t, k in zip(ts, p.keep, strict=True) if k)
                       for p, ts in zip(parts, unit_tokens, strict=True) if any(p.keep))

        report.tokens_before = total()
        if report.tokens_before > budget:
            self._drop_units(question, parts, unit_tokens, budget, total(), report)
        while total() > budget and sum(any(p.keep) for p in parts) > 1:
            last = max(i for i, p in enumerate(parts) if any(p.keep))
            parts[last].keep = [False] * len(parts[last].keep)
            report.dropped_sources.append(parts[last].hit.chunk.id)
        report.tokens_after = total()
        kept = []
        for p in parts:
            if not any(p.keep):
                continue
            if all(p.keep):
                kept.append(p.hit)
            else:
                meta = replace(p.hit.chunk.metadata, window=p.text())
                kept.append(replace(p.hit, chunk=replace(p.hit.chunk, metadata=meta)))
        return kept, report

    def _drop_units(self, question: str, parts: list[_Source], unit_tokens: list[list[int]], budget: int,
                    current: int, report: CompressionReport) -> None:
        """Drop the least question-like units (never a table header, never the retrieved text) until it fits."""
        candidates: list[tuple[int, int]] = []
        for i, p in enumerate(parts):
            for j, unit in enumerate(p.units):
                retrieved = bool(p.hit.chunk.metadata.window) and unit.strip() in p.hit.chunk.text
                if not ((p.is_table and j < p.header_end) or retrieved):
                    candidates.append((i, j))
        if not candidates:
            return
        vectors = self.embedder.embed([question] + [parts[i].units[j] for i, j in candidates])
        scores = vectors[1:] @ vectors[0]
        for n in np.argsort(scores, kind="stable"):
            if current <= budget:
                break
            i, j = candidates[n]
            parts[i].keep[j] = False
            current -= unit_tokens[i][j]
            report.dropped_units.append(parts[i].units[j])
