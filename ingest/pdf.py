"""PDF parsing: page text with pypdf (1-based page numbers), ruled tables with pdfplumber."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ingest.errors import CORRUPT, EMPTY, NO_TEXT_LAYER, PASSWORD_REQUIRED, IngestError
from ingest.tables import Table
from rag.types import Element, ElementType

log = logging.getLogger(__name__)

# A page line is treated as part of a table (and left out of the page text) when at least this
# share of its words are cell words of a table on the same page.
_TABLE_LINE_OVERLAP = 0.8


class PdfParser:
    """Turns a PDF into page-text and table elements.

    >>> PdfParser().parse(Path("leaflet.pdf"), "leaflet.pdf")[0].page
    1
    """

    version = "pdf-1"

    def __init__(self, passwords: list[str] | None = None) -> None:
        self.passwords = list(passwords or [])

    def parse(self, path: Path, source: str) -> list[Element]:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        if path.stat().st_size == 0:
            raise IngestError(source, EMPTY, "0-byte file")
        try:
            reader = PdfReader(path, strict=False)
            password = self._unlock(reader, source)
            page_texts = [(page.extract_text() or "") for page in reader.pages]
        except IngestError:
            raise
        except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
            raise IngestError(source, CORRUPT, f"{type(exc).__name__}: {exc}") from exc
        if not page_texts:
            raise IngestError(source, EMPTY, "no pages")
        if not any(t.strip() for t in page_texts):
            raise IngestError(source, NO_TEXT_LAYER, f"{len(page_texts)} pages without extractable text")

        tables = self._tables(path, source, password)
        elements: list[Element] = []
        for number, text in enumerate(page_texts, start=1):
            page_tables = tables.get(number, [])
            for t_index, table in enumerate(page_tables, start=1):
                elements.append(Element(table.to_markdown(), source, number, ElementType.TABLE,
                                        table_id=f"p{number}-t{t_index}"))
            text = _drop_table_lines(text, page_tables)
            if text.strip():
                elements.append(Element(text, source, number, ElementType.TEXT))
        return sorted(elements, key=lambda e: (e.page or 0, e.element_type != ElementType.TEXT))

    def _unlock(self, reader, source: str) -> str | None:
        if not reader.is_encrypted:
            return None
        for password in ["", *self.passwords]:
            try:
                if reader.decrypt(password):
                    return password
            except Exception as exc:  # noqa: BLE001 - pypdf raises several types for bad keys/ciphers
                log.debug("%s: decrypt failed: %s", source, exc)
        raise IngestError(source, PASSWORD_REQUIRED, "add the password to RAG_PDF_PASSWORDS")

    def _tables(self, path: Path, source: str, password: str | None) -> dict[int, list[Table]]:
        import pdfplumber

        found: dict[int, list[Table]] = {}
        try:
            with pdfplumber.open(path, password=password or "") as pdf:
                for number, page in enumerate(pdf.pages, start=1):
                    for raw in page.extract_tables():
                        table = Table.from_cells(raw)
                        if table is not None and table.rows and len(table.header) > 1:
                            found.setdefault(number, []).append(table)
                    page.flush_cache()  # pdfplumber keeps every parsed page otherwise
        except Exception as exc:  # noqa: BLE001 - tables are a bonus; the page text still stands
            log.warning("%s: table extraction failed (%s); page text kept", source, exc)
        return found


def _drop_table_lines(text: str, tables: list[Table]) -> str:
    if not tables:
        return text
    cell_words = set().union(*(t.words() for t in tables))
    kept = []
    for line in text.splitlines():
        words = re.findall(r"\S+", line)
        if words and sum(w in cell_words for w in words) / len(words) >= _TABLE_LINE_OVERLAP:
            continue
        kept.append(line)
    return "\n".join(kept)
