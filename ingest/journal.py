"""The ingestion journal: what a run is about to write, recorded before it writes it.

Chunks reach the stores (Chroma, the chunk store, BM25) file by file, while the manifest is saved every 30 s and
at the end of a run. A run killed in between leaves chunks that no manifest entry owns, and before this journal the
next run took every such chunk for a leftover and deleted it, which also deleted every document of an index whose
manifest was lost or put back from an older copy (issue 44). Now a chunk is undone only when an unfinished run's
journal names it; chunks that nothing owns are adopted back into the manifest (``ingest.repair``).

Each record is one JSON line, flushed and fsynced before the stores are touched, so a record exists for every
write that began; a line torn by a kill belongs to a write that never started and is ignored. The journal is
emptied once the manifest that records the run's work is saved.

>>> journal = IngestJournal(index_dir / "journal.jsonl")
>>> journal.writing(key, entry, stale_ids)   # before the chunks are added
>>> journal.clear()                          # after the manifest is saved
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ingest.manifest import FileEntry

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"


@dataclass(frozen=True)
class JournalRecord:
    """One write a run began: ``writing`` a file's new chunks (``entry``, the manifest entry it will get, and
    ``stale``, the old version's ids it then deletes), or ``removing`` a file's entry and chunks."""

    action: str  # "writing" | "removing"
    key: str
    entry: FileEntry
    stale: list[str] = field(default_factory=list)


class IngestJournal:
    """Append-only records of the writes of runs whose manifest is not saved yet. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def writing(self, key: str, entry: FileEntry, stale: list[str]) -> None:
        self._append(JournalRecord("writing", key, entry, list(stale)))

    def removing(self, key: str, entry: FileEntry) -> None:
        self._append(JournalRecord("removing", key, entry))

    def _append(self, record: JournalRecord) -> None:
        line = json.dumps({"action": record.action, "key": record.key, "entry": asdict(record.entry),
                           "stale": record.stale}, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())  # on disk before the first chunk of the write is

    def records(self) -> list[JournalRecord]:
        """The records of unfinished runs, oldest first (a torn last line is left out)."""
        with self._lock:
            try:
                lines = self.path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                return []
            except (OSError, UnicodeDecodeError) as exc:
                log.warning("%s unreadable (%s): no interrupted run to undo", self.path, exc)
                return []
        out = []
        for number, line in enumerate(lines, 1):
            try:
                data = json.loads(line)
                out.append(JournalRecord(data["action"], data["key"], FileEntry(**data["entry"]),
                                         list(data.get("stale", []))))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s line %d unreadable (%s): that write never started", self.path, number, exc)
        return out

    def clear(self) -> None:
        """Called once the manifest that records every journalled write is saved."""
        with self._lock:
            self.path.unlink(missing_ok=True)

    def __bool__(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0
