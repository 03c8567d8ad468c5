"""What every chunker shares: the draft type, the Chunker protocol, sentence units and table splitting."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ingest.tables import markdown_cells
from rag.analysis import split_sentences
from rag.types import Element, ElementType

TokenCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it gets its id and document metadata."""

    text: str
    page: int | None
    page_end: int | None
    element_type: ElementType
    section: str | None = None
    table_id: str | None = None
    window: str | None = None
    table_json: str | None = None  # {"header": [...], "rows": [[...], ...]} of a table chunk
    lead_in: str | None = None  # a list item's lead-in sentence (``rag.enumeration``)


@runtime_checkable
class Chunker(Protocol):
    name: str

    def params(self) -> dict[str, object]: ...

    def split(self, elements: list[Element]) -> list[ChunkDraft]: ...


@dataclass(frozen=True)
class Sentence:
    text: str
    page: int | None
    section: str | None
    element_type: ElementType


def sentences_of(elements: list[Element], max_tokens: int, count_tokens: TokenCounter) -> list[Sentence]:
    """Every non-table element's sentences in document order; sentences over budget are cut by words."""
    found = [Sentence(s, e.page, e.section, e.element_type) for e in elements
             if e.element_type != ElementType.TABLE
             for s in ([" ".join(e.text.split())] if e.element_type == ElementType.TITLE else split_sentences(e.text))]
    if not found:
        return []
    sizes = count_tokens([s.text for s in found])
    result: list[Sentence] = []
    for sentence, size in zip(found, sizes, strict=True):
        if size <= max_tokens:
            result.append(sentence)
        else:
            result.extend(Sentence(piece, sentence.page, sentence.section, sentence.element_type)
                          for piece in _cut_words(sentence.text, size, max_tokens))
    return result


def _cut_words(text: str, size: int, max_tokens: int) -> list[str]:
    # Word pieces per word vary; aim at 80% of the budget so that no piece ends up over it.
    words = text.split()
    per_piece = max(1, int(len(words) * max_tokens * 0.8 / size))
    return [" ".join(words[i:i + per_piece]) for i in range(0, len(words), per_piece)]


def table_chunks(elements: list[Element], max_tokens: int, count_tokens: TokenCounter) -> list[ChunkDraft]:
    """Tables split into groups of whole rows, each group repeating the title and header row."""
    drafts: list[ChunkDraft] = []
    for element in elements:
        if element.element_type != ElementType.TABLE:
            continue
        lines = element.text.splitlines()
        title = [ln for ln in lines[:next((i for i, ln in enumerate(lines) if ln.startswith("|")), 0)]]
        lines = lines[len(title):]
        header, rows = title + lines[:2], lines[2:]
        sizes = count_tokens(["\n".join(header)] + rows)
        budget = max_tokens - sizes[0]
        group: list[str] = []
        used = 0
        for row, size in zip(rows, sizes[1:], strict=True):
            if group and used + size > budget:
                drafts.append(_table_draft(element, header + group))
                group, used = [], 0
            group.append(row)
            used += size
        if group or not rows:
            drafts.append(_table_draft(element, header + group))
    return drafts


def _table_draft(element: Element, lines: list[str]) -> ChunkDraft:
    """A chunk of a table: its title lines (if any), header, separator and a group of rows."""
    title = [ln for ln in lines if not ln.startswith("|")]
    table = lines[len(title):]
    cells = {"header": markdown_cells(table[0]), "rows": [markdown_cells(row) for row in table[2:]]}
    if title:
        cells["title"] = " ".join(title)
    return ChunkDraft("\n".join(lines), element.page, element.page, ElementType.TABLE, element.section,
                      element.table_id, table_json=json.dumps(cells, ensure_ascii=False))


def draft_of(group: list[Sentence]) -> ChunkDraft:
    """One chunk from consecutive sentences: pages span first to last, one element type if shared."""
    pages = [s.page for s in group if s.page is not None]
    kinds = {s.element_type for s in group}
    kind = kinds.pop() if len(kinds) == 1 else ElementType.TEXT
    return ChunkDraft(" ".join(s.text for s in group), min(pages, default=None), max(pages, default=None), kind,
                      group[0].section)


def pack(sentences: list[Sentence], count_tokens: TokenCounter, max_tokens: int) -> list[ChunkDraft]:
    """Consecutive sentences packed greedily into chunks of at most ``max_tokens``."""
    if not sentences:
        return []
    drafts: list[ChunkDraft] = []
    group: list[Sentence] = []
    used = 0
    for sentence, size in zip(sentences, count_tokens([s.text for s in sentences]), strict=True):
        # +1 per sentence for the joining space, which can add a word piece.
        if group and used + size + 1 > max_tokens:
            drafts.append(draft_of(group))
            group, used = [], 0
        group.append(sentence)
        used += size + 1
    if group:
        drafts.append(draft_of(group))
    return drafts
