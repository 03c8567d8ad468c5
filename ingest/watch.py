"""Folder sync: keep an index in step with a folder as files are added, changed and deleted (``watchfiles``).

Each batch of changes (debounced) runs the same incremental ingest as ``rag ingest``: new and changed files
are ingested, deleted files' chunks removed, unchanged ones skipped, one file's failure reported and the rest
going on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def watch_folder(folder: Path, sync: Callable[[Path], None], stop: threading.Event | None = None,
                 debounce_ms: int = 1600) -> None:
    """Runs ``sync(folder)`` once, then after every debounced batch of changes, until ``stop`` is set.

    ``sync`` is the incremental ingest; its errors are logged and the watch goes on.
    """
    from watchfiles import watch

    folder = folder.resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder to watch: {folder}")

    def visible(_change, path: str) -> bool:
        """Hidden files and folders below ``folder`` are skipped by ingestion: their changes trigger nothing
        (the folder itself may sit inside a hidden one, such as ~/.local)."""
        try:
            parts = Path(path).relative_to(folder).parts
        except ValueError:
            return True
        return not any(part.startswith(".") for part in parts)

    def run_once() -> None:
        try:
            sync(folder)
        except Exception:  # noqa: BLE001 - a failed sync is reported; the next change tries again
            log.exception("syncing %s failed", folder)

    run_once()
    for changes in watch(folder, watch_filter=visible, debounce=debounce_ms, stop_event=stop,
                         raise_interrupt=False, yield_on_timeout=False):
        log.info("%d changes in %s", len(changes), folder)
        run_once()


def start_watching(folder: Path, sync: Callable[[Path], None], debounce_ms: int = 1600) -> threading.Event:
    """``watch_folder`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=watch_folder, args=(folder, sync, stop, debounce_ms), name=f"watch {folder.name}",
                     daemon=True).start()
    return stop
