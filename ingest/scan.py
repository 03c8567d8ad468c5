"""Scanned pages: which pages of a PDF need OCR, rendering them (pypdfium2), and reading them (``ingest.ocr``).

A page is read by OCR when it has no text layer, or when it is a scan (an image covers half the page or
more) whose text layer scores below ``SCAN_LAYER_MIN_QUALITY``; then the better of the two texts is kept.
Pages are read one by one: a blank page, or one the engine fails on, is skipped with its number and reason,
and the others are read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.layout import PageLayout, page_layout
from ingest.ocr import BlankPage, OcrEngine, OcrPage, OcrUnavailable, make_engine, recognise_all
from ingest.textlayer import MIN_CHARACTERS, text_quality

if TYPE_CHECKING:
    from PIL import Image

    from rag.settings import Settings

log = logging.getLogger(__name__)

# A scan's own OCR layer scoring below this is read again (measured: the garbage layer of the shared corpus
# scores 0.81, a rotated office scan's 0.40-0.82; the Vicksburg book scan's good layer 0.96-0.98).
SCAN_LAYER_MIN_QUALITY = 0.9
_SCAN_COVERAGE = 0.5  # share of the page an image must cover for the page to count as a scan


@dataclass(frozen=True)
class ScannedPage:
    """One page read by OCR: what the engine saw and the page rebuilt from it."""

    number: int  # 1-based
    ocr: OcrPage
    layout: PageLayout
    replaced_layer: bool = False  # the page had a (poor) text layer that the OCR text replaced


@dataclass(frozen=True)
class SkippedPage:
    """A page OCR gave no text for, left out and reported: blank, or the engine (or renderer) failed on it."""

    number: int  # 1-based
    reason: str  # "one colour", "all transparent", "no ink after binarisation", or the error
    blank: bool

    def __str__(self) -> str:
        return f"p.{self.number} ({'blank' if self.blank else 'OCR failed'}: {self.reason})"


@dataclass(frozen=True)
class ScanResult:
    """What OCR made of a file's pages: those read, and those skipped with the reason."""

    pages: list[ScannedPage]
    skipped: list[SkippedPage]

    @property
    def blank(self) -> list[SkippedPage]:
        return [page for page in self.skipped if page.blank]

    @property
    def failed(self) -> list[SkippedPage]:
        return [page for page in self.skipped if not page.blank]


class PageScanner:
    """Finds the pages of a PDF that need OCR and reads them, pages in parallel.

    >>> PageScanner.from_settings(Settings()).read_pdf(Path("scan.pdf"), None, ["", ""])
    """

    def __init__(self, engine: OcrEngine, dpi: int = 300, workers: int | None = None, enabled: bool = True) -> None:
        if dpi < 72:
            raise ValueError(f"dpi must be >= 72, got {dpi}")
        self.engine = engine
        self.dpi = dpi
        self.workers = workers
        self.enabled = enabled

    @classmethod
    def from_settings(cls, settings: Settings) -> PageScanner:
        return cls(make_engine(settings.ocr_engine, settings.ocr_languages), settings.ocr_dpi, settings.ocr_workers,
                   settings.ocr == "auto")

    @property
    def version(self) -> str:
        """What changes the text of OCR'd pages: part of every PDF's and image's ingestion config."""
        languages = "+".join(getattr(self.engine, "languages", []))
        return f"{self.engine.name}:{languages}@{self.dpi}" if self.enabled else "off"

    def check(self) -> None:
        """Raise ``OcrUnavailable`` (naming what to install) when the engine cannot run here."""
        self.engine.check()

    def pages_to_read(self, path: Path, password: str | None, page_texts: Sequence[str]) -> list[int]:
        """1-based numbers of the pages without a text layer, and of scans whose text layer is poor."""
        import pypdfium2 as pdfium

        short = [n for n, text in enumerate(page_texts, start=1) if len(text.strip()) < MIN_CHARACTERS]
        poor = [n for n, text in enumerate(page_texts, start=1)
                if len(text.strip()) >= MIN_CHARACTERS and text_quality(text) < SCAN_LAYER_MIN_QUALITY]
        if not short and not poor:
            return []  # a born-digital PDF with good text everywhere: not even opened again
        pdf = pdfium.PdfDocument(path, password=password)
        try:
            wanted = [n for n in short if _worth_reading(pdf[n - 1], page_texts[n - 1])]
            wanted += [n for n in poor if _image_coverage(pdf[n - 1]) >= _SCAN_COVERAGE]
        finally:
            pdf.close()
        return sorted(wanted)

    def read_pdf(self, path: Path, password: str | None, page_texts: Sequence[str],
                 pages: Sequence[int] | None = None) -> ScanResult:
        """OCR ``pages`` (default: ``pages_to_read``); a page whose own text layer is better keeps it (left
        out of both lists); a blank page, or one that cannot be rendered or read, is skipped."""
        import pypdfium2 as pdfium

        if pages is None:
            pages = self.pages_to_read(path, password, page_texts)
        if not pages:
            return ScanResult([], [])
        pdf = pdfium.PdfDocument(path, password=password)
        try:
            # pdfium is not thread-safe: pages are rendered here, one by one, and recognised by the workers.
            read = recognise_all(self.engine, _rendered(pdf, pages, self.dpi), self.workers)
        finally:
            pdf.close()
        scanned, skipped = [], []
        for number, ocr in zip(pages, read, strict=True):
            if isinstance(ocr, Exception):
                skipped.append(_skipped(path.name, number, ocr))
                continue
            layout = page_layout(ocr)
            layer = page_texts[number - 1]
            if len(layer.strip()) >= MIN_CHARACTERS and text_quality(layer) >= text_quality(_all_text(layout)):
                continue  # the scan's own layer reads better than our OCR
            scanned.append(ScannedPage(number, ocr, layout, replaced_layer=bool(layer.strip())))
        return ScanResult(scanned, skipped)

    def read_images(self, frames: Iterator[Image.Image], name: str = "image") -> ScanResult:
        """Every frame of an image file (a multi-page TIFF has several), numbered from 1."""
        scanned, skipped = [], []
        for number, ocr in enumerate(recognise_all(self.engine, frames, self.workers), start=1):
            if isinstance(ocr, Exception):
                skipped.append(_skipped(name, number, ocr))
            else:
                scanned.append(ScannedPage(number, ocr, page_layout(ocr)))
        return ScanResult(scanned, skipped)


def _skipped(name: str, number: int, error: Exception) -> SkippedPage:
    if isinstance(error, BlankPage):
        return SkippedPage(number, str(error), blank=True)
    log.warning("%s: OCR failed on page %d (%s: %s); the page is skipped", name, number,
                type(error).__name__, error)
    return SkippedPage(number, f"{type(error).__name__}: {str(error)[:200]}", blank=False)


def _rendered(pdf, numbers: Sequence[int], dpi: int) -> Iterator[Image.Image | Exception]:
    """The pages as images, in order; a page pdfium cannot render gives its error instead."""
    for number in numbers:
        try:
            image: Image.Image | Exception = _render(pdf[number - 1], dpi)
        except Exception as exc:  # noqa: BLE001 - that page is reported; the others are read
            image = exc
        yield image


def _render(page, dpi: int) -> Image.Image:
    """The page as a grayscale image, its /Rotate applied."""
    return page.render(scale=dpi / 72, grayscale=True).to_pil()


def _all_text(layout: PageLayout) -> str:
    return "\n".join([layout.text, *(" ".join(c for row in t.rows for c in row) for t in layout.tables)])


def _image_coverage(page) -> float:
    """Largest share of the page one image covers."""
    import pypdfium2.raw as pdfium_c

    width, height = page.get_size()
    if width <= 0 or height <= 0:
        return 0.0
    coverage = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = obj.get_bounds()
        coverage = max(coverage, (right - left) * (top - bottom) / (width * height))
    return min(coverage, 1.0)


def _worth_reading(page, text: str) -> bool:
    """A page with little or no text is read when an image covers part of it, or, without any text, when it
    draws anything at all (text drawn as outlines); a blank page or a bare page number is not."""
    if _image_coverage(page) > 0.05:
        return True
    return not text.strip() and any(True for _ in page.get_objects(max_depth=1))


__all__ = ["OcrUnavailable", "PageScanner", "ScanResult", "ScannedPage", "SkippedPage",
           "SCAN_LAYER_MIN_QUALITY"]
