"""Shared data types that flow between ingestion, query, API and evaluation.

Every stage takes and returns these; none of them mutates its input (stages return copies).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


class ElementType(StrEnum):
    TEXT = "text"
    TABLE = "table"
    TITLE = "title"
    LIST = "list"


@dataclass(frozen=True)
class Element:
    """One parsed piece of a document (a page's text, a table, a heading) before chunking."""

    text: str
    source: str
    page: int | None
    element_type: ElementType = ElementType.TEXT
    section: str | None = None
    table_id: str | None = None


@dataclass(frozen=True)
class ChunkMetadata:
    """Flat metadata, storable as-is in Chroma (scalars only; None values are dropped)."""

    source: str
    page: int | None = None
    page_end: int | None = None
    element_type: ElementType = ElementType.TEXT
    section: str | None = None
    table_id: str | None = None
    table_json: str | None = None  # header and rows of a table chunk, as JSON
    doc_id: str = ""
    doc_hash: str = ""
    # The manifest's key (the file's absolute path) and ingestion config: an index whose manifest was lost
    # rebuilds its entries from these (``ingest.repair``) instead of taking the chunks for leftovers.
    file_path: str | None = None
    config_key: str | None = None
    chunker: str = ""
    chunker_params: str = ""  # JSON, so that it stays a flat Chroma value
    language: str | None = None
    file_mtime: float | None = None
    ingested_at: float | None = None
    ordinal: int = 0
    # Sentence-window chunker: the surrounding sentences handed to generation instead of the hit.
    window: str | None = None
    # A list item's lead-in ("En la sección II se publicarán:"), found across the document (rag.enumeration).
    lead_in: str | None = None
    # Text read by OCR: the engine, its mean word confidence (0-100) on the chunk's words, and the words' boxes
    # on the page as JSON [[word, x0, y0, x1, y1], ...] in shares of the upright page (for highlighting).
    ocr: bool | None = None
    ocr_engine: str | None = None
    ocr_confidence: float | None = None
    ocr_boxes: str | None = None

    def to_store(self) -> dict[str, str | int | float | bool]:
        return {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_store(cls, data: dict[str, Any]) -> ChunkMetadata:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "element_type" in known:
            known["element_type"] = ElementType(known["element_type"])
        return cls(**known)


@dataclass(frozen=True)
class Chunk:
    """A retrieval unit: text plus where it came from. The id is derived from content and position."""

    id: str
    text: str
    metadata: ChunkMetadata

    @staticmethod
    def make_id(doc_id: str, ordinal: int, text: str) -> str:
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
        return f"{doc_id}-{ordinal:05d}-{digest}"

    @staticmethod
    def document_id(chunk_id: str) -> str:
        """The ``doc_id`` a chunk id was made with (``make_id``): the retrievers' lists hold ids alone, and
        the document ranking groups them by document without reading the chunks."""
        return chunk_id.rsplit("-", 2)[0]

    @property
    def context_text(self) -> str:
        """The text handed to the generator (the sentence window when there is one)."""
        return self.metadata.window or self.text


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk with the score of the stage that produced it and its rank in each retriever."""

    chunk: Chunk
    score: float
    ranks: dict[str, int] = field(default_factory=dict)

    def rescored(self, score: float) -> ScoredChunk:
        return replace(self, score=score)


@dataclass(frozen=True)
class Citation:
    """A cited source. ``quote_start``/``quote_end``: the quoted span in ``text`` (characters), so that a
    page can highlight it; set when the answer quotes the source."""

    source: str
    page: int | None
    chunk_id: str
    score: float
    text: str
    quote_start: int | None = None
    quote_end: int | None = None
    ocr_engine: str | None = None  # set when the cited text was read by OCR from a scan
    ocr_confidence: float | None = None  # that OCR's mean word confidence on the chunk (0-100)

    @classmethod
    def from_scored(cls, hit: ScoredChunk, quotes: tuple[str, ...] = ()) -> Citation:
        """``quotes``: the sentences (or table rows) the answer quotes from this source; ``text`` is the
        stored chunk, or its sentence window when a quote lies outside the chunk itself."""
        meta = hit.chunk.metadata
        text = hit.chunk.text
        spans = [_span(text, q) for q in quotes]
        if quotes and None in spans and hit.chunk.context_text != text:
            text = hit.chunk.context_text
            spans = [_span(text, q) for q in quotes]
        found = [s for s in spans if s is not None]
        start, end = (min(s for s, _ in found), max(e for _, e in found)) if found else (None, None)
        return cls(source=meta.source, page=meta.page, chunk_id=hit.chunk.id, score=round(hit.score, 6),
                   text=text, quote_start=start, quote_end=end,
                   ocr_engine=meta.ocr_engine if meta.ocr else None,
                   ocr_confidence=meta.ocr_confidence if meta.ocr else None)


def _span(text: str, quote: str) -> tuple[int, int] | None:
    """Where ``quote`` is in ``text``; for a table row quoted with its header, where the row is."""
    quote = quote.strip()
    at = text.find(quote)
    if at >= 0:
        return at, at + len(quote)
    row = quote.splitlines()[-1].strip() if "\n" in quote else ""
    at = text.find(row) if row else -1
    return (at, at + len(row)) if at >= 0 else None


@dataclass
class Trace:
    """What happened while answering: per-stage timings (ms) and stage details, for users and evaluation."""

    timings_ms: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}, **self.details,
                "notes": list(self.notes)}


@dataclass
class Answer:
    """``short_answer``: the span that answers the question's focus ("un mes"), put first in a quoted answer's
    ``text``; it is ``citations[short_citation - 1].text[short_start:short_end]`` (1-based ``short_citation``),
    except for a yes/no answer ("Sí"/"Yes"/"No"), whose span is the quoted sentence that decides it
    (``rag.short``)."""

    text: str
    abstained: bool
    citations: list[Citation]
    trace: Trace
    short_answer: str | None = None
    short_start: int | None = None
    short_end: int | None = None
    short_citation: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.text, "abstained": self.abstained,
                "citations": [asdict(c) for c in self.citations], "trace": self.trace.to_dict(),
                "short_answer": self.short_answer, "short_start": self.short_start, "short_end": self.short_end,
                "short_citation": self.short_citation}
