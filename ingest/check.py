"""``rag index check``: what each store of an index folder holds, and every disagreement between them.

Read-only: nothing is written, moved or derived (``ingest.repair`` fixes what this finds). The manifest is the
reference: every other store should hold exactly its chunk ids; the journal should be empty; the chunk store
should be at the index's generation; the exact search's files should hold Chroma's ids.

>>> print(check_index(Settings(index_dir=Path(".rag-index"))).summary())
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ingest.journal import JOURNAL_FILE, IngestJournal
from ingest.manifest import Manifest
from rag.bm25 import BM25Index
from rag.exact import cached_ids
from rag.index import CHUNKS_FILE, WINDOWS_SUFFIX
from rag.settings import Settings
from rag.vectorstore import ChromaStore


@dataclass(frozen=True)
class StoreState:
    """One store: how many chunk ids it holds (None: absent or unreadable) and a note."""

    name: str
    count: int | None
    note: str = ""


@dataclass
class IndexCheck:
    index_dir: Path
    stores: list[StoreState] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        width = max((len(s.name) for s in self.stores), default=10)
        lines = [f"index {self.index_dir}:"]
        lines += [f"  {s.name:<{width}}  {'-' if s.count is None else s.count:>9}  {s.note}".rstrip()
                  for s in self.stores]
        if self.problems:
            lines.append(f"{len(self.problems)} disagreements (run 'rag index repair' to fix them):")
            lines += [f"  - {p}" for p in self.problems]
        else:
            lines.append("in step: every store holds the manifest's chunks")
        return "\n".join(lines)


def check_index(settings: Settings) -> IndexCheck:
    folder = Path(settings.index_dir)
    result = IndexCheck(folder)
    stores, problems = result.stores, result.problems
    manifest_path = folder / "manifest.json"
    manifest = Manifest(manifest_path) if manifest_path.exists() else None
    owned: set[str] = manifest.chunk_ids() if manifest is not None else set()
    if manifest is None:
        stores.append(StoreState("manifest.json", None, "absent"))
    elif manifest.unreadable:
        stores.append(StoreState("manifest.json", None, f"unreadable ({manifest.unreadable})"))
        problems.append(f"manifest.json is unreadable ({manifest.unreadable})")
    else:
        stores.append(StoreState("manifest.json", len(owned), f"{len(manifest)} documents"))

    records = IngestJournal(folder / JOURNAL_FILE).records()
    stores.append(StoreState(JOURNAL_FILE, len(records), "writes of an unfinished run" if records else ""))
    if records:
        problems.append(f"{JOURNAL_FILE} names {len(records)} writes of a run that did not finish")

    generation = _read(folder / "generation")
    held: dict[str, set[str]] = {}
    if not settings.chroma_url:
        held[CHUNKS_FILE] = _chunk_store(folder / CHUNKS_FILE, generation, stores, problems)
    chroma = ChromaStore(path=Path(settings.chroma_dir) if settings.chroma_dir else folder / "chroma",
                         collection=settings.collection, url=settings.chroma_url)
    for name in (settings.collection, settings.collection + WINDOWS_SUFFIX):
        held[f"chroma {name}"] = _chroma_ids(chroma, name, stores, problems)
    for name in ("bm25.npz", "bm25-windows.npz"):
        held[name] = _bm25_ids(folder / name, stores, problems)

    anything = any(held.values()) or bool(owned)
    if not settings.chroma_url and not (folder / CHUNKS_FILE).exists() and held.get(f"chroma {settings.collection}"):
        problems.append(f"{CHUNKS_FILE} is missing (questions read chunks out of Chroma until it is copied again)")
    for name, ids in held.items():
        if ids is None:
            continue
        missing, extra = len(owned - ids), len(ids - owned)
        if missing:
            problems.append(f"{name}: {missing} chunks of the manifest are missing")
        if extra and manifest is not None and not manifest.unreadable:
            problems.append(f"{name}: {extra} chunks that no manifest entry owns")
        elif extra:
            problems.append(f"{name}: {extra} chunks and no readable manifest to own them")

    if not settings.chroma_url:
        for name in (settings.collection, settings.collection + WINDOWS_SUFFIX):
            _exact(folder / f"exact-{name}.npz", held.get(f"chroma {name}"), stores, problems)
        if anything and generation is None:
            problems.append("generation is missing (the chunk store and exact-search files cannot be trusted)")
        stores.append(StoreState("generation", None if generation is None else 1, generation or "absent"))
        model = _vectors_model(folder / "vectors.json")
        stores.append(StoreState("vectors.json", None if model is None else 1, model or "absent"))
        if anything and model is None:
            problems.append("vectors.json is missing or unreadable (the vectors' model is not recorded)")
    return result


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _chunk_store(path: Path, generation: str | None, stores: list[StoreState], problems: list[str]) -> set[str] | None:
    if not path.exists():
        stores.append(StoreState(CHUNKS_FILE, None, "absent"))
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ids = {row[0] for row in db.execute("SELECT id FROM chunks")}
            row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        stores.append(StoreState(CHUNKS_FILE, None, f"unreadable ({exc})"))
        problems.append(f"{CHUNKS_FILE} is unreadable ({exc})")
        return None
    stamped = row[0] if row else None
    in_step = generation is not None and stamped == generation
    stores.append(StoreState(CHUNKS_FILE, len(ids), "" if in_step else "not at the index's generation"))
    if not in_step:
        problems.append(f"{CHUNKS_FILE} is not at the index's generation (it is copied again from Chroma)")
    return ids


def _chroma_ids(chroma: ChromaStore, name: str, stores: list[StoreState], problems: list[str]) -> set[str] | None:
    label = f"chroma {name}"
    if chroma.url is None and not chroma.path.exists():
        stores.append(StoreState(label, None, "absent"))
        return set()
    try:
        names = {getattr(c, "name", c) for c in chroma.client.list_collections()}
        if name not in names:
            stores.append(StoreState(label, None, "no such collection"))
            return set()
        ids = set(chroma.client.get_collection(name).get(include=[])["ids"])
    except Exception as exc:  # noqa: BLE001 - whatever Chroma raises on a damaged folder
        stores.append(StoreState(label, None, f"unreadable ({type(exc).__name__}: {exc})"))
        problems.append(f"{label} is unreadable ({type(exc).__name__}: {exc})")
        return None
    stores.append(StoreState(label, len(ids)))
    return ids


def _bm25_ids(path: Path, stores: list[StoreState], problems: list[str]) -> set[str] | None:
    if not path.exists():
        stores.append(StoreState(path.name, None, "absent"))
        return set()
    try:
        ids = set(BM25Index(path).ids())
    except (ValueError, OSError) as exc:
        stores.append(StoreState(path.name, None, "unreadable"))
        problems.append(str(exc))
        return None
    stores.append(StoreState(path.name, len(ids)))
    return ids


def _exact(path: Path, chroma: set[str] | None, stores: list[StoreState], problems: list[str]) -> None:
    """The exact search's cache: absent is no disagreement (an ingest into a store it has not searched drops it,
    and the first search writes it again); present, it must hold Chroma's ids."""
    try:
        cached = cached_ids(path)
    except ValueError as exc:
        stores.append(StoreState(path.name, None, "unreadable"))
        problems.append(str(exc))
        return
    if cached is None:
        stores.append(StoreState(path.name, None, "absent (written by the first search)"))
        return
    ids = set(cached[0])
    stores.append(StoreState(path.name, len(ids)))
    if chroma is not None and ids != chroma:
        problems.append(f"{path.name}: holds {len(ids - chroma)} ids Chroma lacks and lacks {len(chroma - ids)} "
                        "of Chroma's")


def _vectors_model(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model")
    except (OSError, ValueError, AttributeError):
        return None
