"""An ingestion's progress as a person follows it: files and pages done of the total, pages/s, time left.

Pages are counted before reading where the file type allows it cheaply (a PDF's page tree, an image's
frames); an Office or text file's pages are known only once it is read, so they join ``pages_total`` then
(and the time left counts such a file still to come as the average file so far). A file's pages are done
when the file is (ingested or failed): the numbers move by whole files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ingest.images import IMAGE_SUFFIXES


@dataclass(frozen=True)
class IngestProgress:
    """One snapshot of a run (immutable: a reader in another thread never sees half an update).

    >>> IngestProgress(files_done=1, files_total=2, pages_done=10, pages_total=30, elapsed_s=5.0).line()
    '1/2 files, 10/30 pages, 2.0 pages/s, about 10 s left'
    """

    files_done: int = 0
    files_total: int = 0
    pages_done: int = 0
    pages_total: int = 0
    files_uncounted: int = 0  # files still to do whose pages are not known before reading them
    current: str | None = None  # the file being read
    elapsed_s: float = 0.0  # since the first file began

    @property
    def pages_per_second(self) -> float:
        return self.pages_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far; None until a file with pages is done."""
        if self.files_done >= self.files_total:
            return 0.0
        if not self.pages_done or not self.files_done:
            return None
        left = self.pages_total - self.pages_done + self.files_uncounted * self.pages_done / self.files_done
        return max(0.0, left / self.pages_per_second)

    def to_dict(self) -> dict[str, object]:
        eta = self.eta_seconds
        return {"files_done": self.files_done, "files_total": self.files_total, "pages_done": self.pages_done,
                "pages_total": self.pages_total, "pages_per_second": round(self.pages_per_second, 2),
                "eta_seconds": None if eta is None else round(eta, 1),
                "elapsed_seconds": round(self.elapsed_s, 1)}

    def line(self) -> str:
        return describe(self.to_dict())


def describe(progress: dict) -> str:
    """One line for a person from ``IngestProgress.to_dict`` (or a job's JSON: it holds the same fields)."""
    files_done, files_total = progress.get("files_done", 0), progress.get("files_total", 0)
    pages_done, pages_total = progress.get("pages_done", 0), progress.get("pages_total", 0)
    parts = [f"{files_done}/{files_total} files", f"{pages_done}/{pages_total} pages"]
    if pages_done:
        parts.append(f"{progress.get('pages_per_second', 0.0):.1f} pages/s")
    eta = progress.get("eta_seconds")
    if eta is not None and files_done < files_total:
        parts.append(f"about {duration(eta)} left")
    return ", ".join(parts)


def duration(seconds: float) -> str:
    """``seconds`` as a person reads it: '45 s', '3 min 20 s', '2 h 05 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def count_pages(path: Path) -> int | None:
    """Pages of a PDF or frames of an image, read cheaply (pdfium reads the page tree, Pillow the header);
    None for other types, or a file that cannot be read so (encrypted, damaged: its parse will say why)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            import pypdfium2 as pdfium

            document = pdfium.PdfDocument(str(path))
            try:
                return len(document)
            finally:
                document.close()
        if suffix in IMAGE_SUFFIXES:
            from PIL import Image

            with Image.open(path) as image:
                return int(getattr(image, "n_frames", 1))
    except Exception:  # noqa: BLE001 - any reader error: the count waits for the parse
        return None
    return None


class ProgressCounter:
    """Counts a run's files and pages as they finish; ``snapshot`` gives the current ``IngestProgress``.
    ``pages``: each planned file's counted pages (None: known once read)."""

    def __init__(self, pages: list[int | None]) -> None:
        self.pages = pages
        self.files_done = 0
        self.pages_done = 0
        self.pages_total = sum(p or 0 for p in pages)
        self.started = time.monotonic()

    def file_done(self, index: int, pages_read: int) -> int:
        """Record planned file ``index`` done (``pages_read``: pages its parse found); returns its pages."""
        counted = self.pages[index]
        if counted is None:  # its pages join the total now that they are known
            counted = pages_read
            self.pages_total += counted
        self.files_done += 1
        self.pages_done += counted
        return counted

    def snapshot(self, current: str | None = None) -> IngestProgress:
        uncounted = sum(1 for p in self.pages[self.files_done:] if p is None)
        return IngestProgress(self.files_done, len(self.pages), self.pages_done, self.pages_total, uncounted,
                              current, time.monotonic() - self.started)
