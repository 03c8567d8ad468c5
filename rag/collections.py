"""Named collections in one index folder: each its own Chroma store, BM25 index and manifest.

The default collection is the index folder itself (indexes made before collections existed are it, as
they are); a collection named ``legal`` lives in ``<index>/collections/legal/``. Teams whose documents must
not mix in answers get one collection each; a question searches one collection.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from rag.errors import InvalidRequest

DEFAULT_COLLECTION = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_FOLDER = "collections"


class UnknownCollection(LookupError):
    """No collection of that name in the index folder."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"no collection {name!r}; collections: {', '.join(known)}")


def check_name(name: str) -> str:
    """The name itself when valid: 1-63 lower-case letters, digits, '-' and '_', starting with a letter or
    digit (it names a folder and a Chroma collection)."""
    if not _NAME.match(name or ""):
        raise InvalidRequest(f"collection name must be 1-63 lower-case letters, digits, '-' or '_' (starting with a "
                         f"letter or digit), got {name!r}")
    return name


def collection_dir(root: Path, name: str) -> Path:
    """Where a collection's files live: the index folder for the default one."""
    check_name(name)
    return Path(root) if name == DEFAULT_COLLECTION else Path(root) / _FOLDER / name


def list_collections(root: Path) -> list[str]:
    """The default collection, then the named ones that exist, sorted."""
    folder = Path(root) / _FOLDER
    named = sorted(p.name for p in folder.iterdir() if p.is_dir() and _NAME.match(p.name)) if folder.is_dir() else []
    return [DEFAULT_COLLECTION, *[n for n in named if n != DEFAULT_COLLECTION]]


def exists(root: Path, name: str) -> bool:
    return name == DEFAULT_COLLECTION or collection_dir(root, name).is_dir()


def create(root: Path, name: str) -> bool:
    """Make a collection's folder; False when it already existed."""
    target = collection_dir(root, name)
    if target.is_dir():
        return False
    target.mkdir(parents=True)
    return True


def remove(root: Path, name: str) -> None:
    """Delete a named collection with everything in it (its uploads too); the default one cannot go."""
    if name == DEFAULT_COLLECTION:
        raise InvalidRequest("the default collection cannot be deleted; delete its documents instead")
    target = collection_dir(root, name)
    if not target.is_dir():
        raise UnknownCollection(name, list_collections(root))
    shutil.rmtree(target)
