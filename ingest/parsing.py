"""Parsing files into elements, here or ahead in a worker process.

``Parsers`` holds what reads one file (pypdf with tables and OCR for PDFs, OCR for images, unstructured for
office formats). ``ParseAhead`` hands the files of a folder ingest to it in order; with ``workers`` > 0 the next
files are parsed in a worker process (``spawn``: no copy of the models or threads of this process) while
this one chunks, embeds and indexes the current file, so that pypdf's pure-Python work and the embedding's
matrix products use both cores. A file's result, or its ``IngestError``, comes back exactly as parsing it here
would give it. Threads were measured slower once (pypdf holds the GIL); a process is measured by
``python -m bench.ingest`` with ``RAG_PARSE_WORKERS`` 0 and 1.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import UNSUPPORTED, IngestError
from ingest.images import IMAGE_SUFFIXES, ImageParser
from ingest.office import OFFICE_SUFFIXES, UnstructuredParser
from ingest.pdf import PdfParser
from ingest.scan import PageScanner, ScannedPage, SkippedPage
from rag.settings import Settings
from rag.types import Element

log = logging.getLogger(__name__)

AHEAD = 2  # files parsed ahead of the one being indexed (bounds the memory their elements hold)


@dataclass(frozen=True)
class ParsedFile:
    """One parsed file: its elements, what was left out of it, its pages read by OCR and those OCR skipped."""

    elements: list[Element]
    warnings: list[str] = field(default_factory=list)
    scanned: dict[int, ScannedPage] = field(default_factory=dict)
    skipped: list[SkippedPage] = field(default_factory=list)  # blank, or OCR failed on them
    seconds: float = 0.0  # spent parsing (in whichever process parsed it)


class Parsers:
    """The parsers of each supported kind of file, configured by the settings (passwords, OCR, page limit)."""

    def __init__(self, settings: Settings) -> None:
        self.scanner = PageScanner.from_settings(settings)
        self.pdf = PdfParser([p.get_secret_value() for p in settings.pdf_passwords],
                             {k: v.get_secret_value() for k, v in settings.pdf_password_map.items()}, self.scanner,
                             max_pages=settings.max_pages)
        self.images = ImageParser(self.scanner)
        self.office = UnstructuredParser()

    def version(self, suffix: str) -> str:
        return (self.pdf.version if suffix == ".pdf" else self.images.version if suffix in IMAGE_SUFFIXES
                else self.office.version)

    def parse(self, path: Path, source: str) -> ParsedFile:
        """Elements, warnings and OCR'd pages of one file; ``IngestError`` when it cannot be read."""
        suffix = path.suffix.lower()
        started = time.perf_counter()
        if suffix == ".pdf":
            elements = self.pdf.parse(path, source)
            return ParsedFile(elements, list(self.pdf.warnings), dict(self.pdf.scanned), list(self.pdf.skipped),
                              time.perf_counter() - started)
        if suffix in IMAGE_SUFFIXES:
            elements = self.images.parse(path, source)
            return ParsedFile(elements, list(self.images.warnings), dict(self.images.scanned),
                              list(self.images.skipped), time.perf_counter() - started)
        if suffix in OFFICE_SUFFIXES:
            return ParsedFile(self.office.parse(path, source), seconds=time.perf_counter() - started)
        raise IngestError(source, UNSUPPORTED, suffix or "no extension")


_WORKER: Parsers | None = None  # the worker process's parsers, built once


def _start_worker(settings: Settings, parent: int) -> None:
    global _WORKER
    from rag.offline import ensure_offline

    ensure_offline()  # the worker is a new interpreter: the same no-network guard as the parent
    _WORKER = Parsers(settings)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_with(parent: int) -> None:
    """End this worker when the ingesting process is gone (killed, crashed): nothing else would, since a worker
    holds both ends of its own task queue, and a lingering one keeps the parent's output pipe open."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # a process of another user took its number: ours is gone
            os._exit(1)


def _parse_in_worker(path: Path, source: str) -> ParsedFile | IngestError:
    """Returned, not raised: the parent re-raises it where parsing it there would have."""
    assert _WORKER is not None
    try:
        return _WORKER.parse(path, source)
    except IngestError as exc:
        return exc


class ParseAhead:
    """Parsed files of ``files`` ((path, source) pairs) in order, up to ``AHEAD`` of them parsed in a worker
    process while the caller works on the current one; ``workers`` = 0, or fewer than two files, parses each here
    when asked for. A worker that dies (killed, out of memory) fails only the files it held: they are parsed
    here again."""

    def __init__(self, parsers: Parsers, settings: Settings, files: Sequence[tuple[Path, str]],
                 workers: int = 1) -> None:
        self.parsers = parsers
        self.files = list(files)
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0 and len(self.files) > 1:
            # "spawn": a fresh interpreter, none of this process's models, threads or locks (fork would copy them).
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(settings, os.getpid()))
        self._futures: dict[int, Future] = {}
        self._submitted = 0  # files handed to the worker so far
        self.waited = 0.0  # seconds the caller waited for the worker's results (not overlapped with its work)

    def __enter__(self) -> ParseAhead:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __iter__(self) -> Iterator[ParsedFile | IngestError | Exception]:
        """Each file's ``ParsedFile``, or the exception parsing it raised (``IngestError`` or another), in order."""
        for number in range(len(self.files)):
            self._submit_upto(number + AHEAD)
            yield self._result(number)

    def _submit_upto(self, last: int) -> None:
        while self._pool is not None and self._submitted < min(last + 1, len(self.files)):
            path, source = self.files[self._submitted]
            try:
                self._futures[self._submitted] = self._pool.submit(_parse_in_worker, path, source)
            except RuntimeError as exc:  # a broken pool (its worker died): the rest are parsed here
                log.warning("the parsing worker is gone (%s); parsing here", exc)
                self.close()
                return
            self._submitted += 1

    def _result(self, number: int) -> ParsedFile | IngestError | Exception:
        path, source = self.files[number]
        future = self._futures.pop(number, None)
        if future is not None:
            started = time.perf_counter()
            try:
                return future.result()
            except Exception as exc:  # noqa: BLE001 - the worker died or the result did not come back
                log.warning("parsing %s in the worker failed (%s: %s); parsing it here", source,
                            type(exc).__name__, exc)
            finally:
                self.waited += time.perf_counter() - started
        try:
            return self.parsers.parse(path, source)
        except Exception as exc:  # noqa: BLE001 - the caller reports it as that file's failure
            return exc
