"""Images (PNG, JPEG, TIFF, multi-page TIFF included) read by OCR, one page per frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ingest.errors import CORRUPT, EMPTY, NO_TEXT_LAYER, IngestError
from ingest.ocr import OcrUnavailable
from ingest.pdf import _ranges, page_elements
from ingest.scan import PageScanner, ScannedPage, SkippedPage
from rag.types import Element

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
_MAX_PIXELS = 200_000_000  # larger images are refused (Pillow's decompression-bomb guard is 179 Mpx)


class ImageParser:
    """Turns an image file into page elements through OCR.

    >>> ImageParser(PageScanner.from_settings(Settings())).parse(Path("fax.tiff"), "fax.tiff")[0].page
    1
    """

    base_version = "image-2"  # 2: running blocks, stamps and contents pages dropped as in PDFs (ingest/boilerplate.py)

    def __init__(self, scanner: PageScanner | None) -> None:
        self.scanner = scanner
        self.warnings: list[str] = []
        self.scanned: dict[int, ScannedPage] = {}
        self.skipped: list[SkippedPage] = []  # frames OCR gave nothing for: blank, or the engine failed

    @property
    def version(self) -> str:
        return f"{self.base_version}+ocr:{self.scanner.version if self.scanner else 'off'}"

    def parse(self, path: Path, source: str) -> list[Element]:
        from PIL import Image, UnidentifiedImageError

        self.warnings, self.scanned, self.skipped = [], {}, []
        if path.stat().st_size == 0:
            raise IngestError(source, EMPTY, "0-byte file")
        if self.scanner is None or not self.scanner.enabled:
            raise IngestError(source, NO_TEXT_LAYER, "an image is read only by OCR, and OCR is off (RAG_OCR=auto)")
        try:
            self.scanner.check()
        except OcrUnavailable as exc:
            raise IngestError(source, NO_TEXT_LAYER,
                              f"an image is read only by OCR, and OCR cannot run: {exc}") from exc
        try:
            with Image.open(path) as image:
                if image.width * image.height > _MAX_PIXELS:
                    raise IngestError(source, CORRUPT, f"{image.width}x{image.height} pixels is too large to read")
                result = self.scanner.read_images(_frames(image), source)
        except IngestError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise IngestError(source, CORRUPT, f"{type(exc).__name__}: {exc}") from exc
        self.scanned = {page.number: page for page in result.pages}
        self.skipped = result.skipped
        count = len(result.pages) + len(result.skipped)
        texts = [self.scanned[n].layout.text if n in self.scanned else "" for n in range(1, count + 1)]
        tables = {page.number: list(page.layout.tables) for page in result.pages if page.layout.tables}
        if not any(t.strip() for t in texts) and not tables:
            raise IngestError(source, NO_TEXT_LAYER, "OCR found no text in the image"
                                                     + (": " + ", ".join(map(str, result.skipped))
                                                        if result.skipped else ""))
        self.warnings.extend(f"OCR failed on page {page.number} ({page.reason}); page skipped"
                             for page in result.failed)
        empty = [p.number for p in result.pages if not p.layout.text.strip() and not p.layout.tables]
        if empty:
            self.warnings.append(f"OCR found no text on page(s) {_ranges(empty)}")
        return page_elements(source, texts, tables)


def _frames(image) -> Iterator:
    """Each frame as its own copy, upright (a TIFF's pages; one for PNG and JPEG)."""
    from PIL import ImageOps, ImageSequence

    for frame in ImageSequence.Iterator(image):
        yield ImageOps.exif_transpose(frame)  # made grey on white paper by ingest.ocr.flatten
