"""Every non-PDF format (DOCX, PPTX, XLSX, CSV/TSV, HTML, MD, EML, TXT) through ``unstructured``."""

from __future__ import annotations

import logging
from pathlib import Path

from ingest.errors import CORRUPT, EMPTY, PASSWORD_REQUIRED, UNSAFE, IngestError
from ingest.safety import ZIP_SUFFIXES, UnsafeFile, check_office_archive
from ingest.spacy_model import configure_unstructured_spacy
from ingest.tables import html_table_to_table
from rag.offline import ensure_offline
from rag.types import Element, ElementType

log = logging.getLogger(__name__)

OFFICE_SUFFIXES = frozenset(
    {".docx", ".pptx", ".xlsx", ".csv", ".tsv", ".html", ".htm", ".md", ".markdown", ".eml", ".txt", ".text"})

_CATEGORY = {"Title": ElementType.TITLE, "ListItem": ElementType.LIST, "Table": ElementType.TABLE}


class UnstructuredParser:
    """Partitions a file with ``unstructured`` (offline) and maps its elements to ours.

    Tables keep their cells: unstructured's ``text_as_html`` becomes a Markdown table.
    """

    version = "unstructured-2"  # 2: a table caption is its title, not its header row

    def parse(self, path: Path, source: str) -> list[Element]:
        if path.stat().st_size == 0:
            raise IngestError(source, EMPTY, "0-byte file")
        if path.suffix.lower() in ZIP_SUFFIXES:
            try:
                check_office_archive(source, path)
            except UnsafeFile as exc:
                raise IngestError(source, UNSAFE, str(exc).split(": ", 1)[-1]) from exc
        ensure_offline()
        configure_unstructured_spacy()
        from unstructured.partition.auto import partition

        encoding = _bom_encoding(path)
        try:
            raw = partition(filename=str(path), languages=["spa", "eng"], encoding=encoding)
        except Exception as exc:  # noqa: BLE001 - unstructured raises many types for broken files
            message = f"{type(exc).__name__}: {exc}"
            if "ParserError" in message and path.suffix.lower() in (".csv", ".tsv"):
                # A ragged CSV (rows of different widths) still has text worth keeping.
                from unstructured.partition.text import partition_text

                raw = partition_text(filename=str(path), encoding=encoding, languages=["spa", "eng"])
            else:
                password = "encrypt" in message.lower() or "password" in message.lower()
                raise IngestError(source, PASSWORD_REQUIRED if password else CORRUPT, message[:300]) from exc

        elements: list[Element] = []
        section: str | None = None
        for item in raw:
            text = (item.text or "").strip()
            kind = _CATEGORY.get(item.category, ElementType.TEXT)
            page = getattr(item.metadata, "page_number", None)
            if kind == ElementType.TABLE:
                html = getattr(item.metadata, "text_as_html", None)
                table = html_table_to_table(html) if html else None
                if table is not None and table.rows:
                    elements.append(Element(table.to_markdown(), source, page, ElementType.TABLE, section,
                                            table_id=f"t{len(elements) + 1}"))
                    continue
            if not text:
                continue
            if kind == ElementType.TITLE:
                section = text[:200]
            elements.append(Element(text, source, page, kind, section))
        if not elements:
            raise IngestError(source, EMPTY, "no text found")
        return elements


def _bom_encoding(path: Path) -> str | None:
    """UTF-16/32 files announce themselves with a byte-order mark; unstructured's CSV reader misses it."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return None
