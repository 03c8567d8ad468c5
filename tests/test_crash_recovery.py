"""A real `rag ingest` process killed with SIGKILL at three points; the next real run repairs the index.

Each kill leaves on disk exactly what a crash leaves (Chroma writes as it goes; the BM25 file and the manifest
are saved at the end). After the repair run, Chroma ids = BM25 ids = manifest ids = the ids a clean ingest of
the same folder produces, and the summary says what was repaired.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.manifest import Manifest
from ingest.pipeline import FolderIngestor
from rag.bm25 import BM25Index
from rag.settings import Settings
from rag.vectorstore import ChromaStore
from tests.conftest import DATA, ROOT

pytestmark = pytest.mark.slow

FILES = ["politica_teletrabajo.md", "prospecto_paracetamol.pdf", "thermolink_t200_manual.pdf"]


def _rag(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tests.crash_driver", kill_at, *args] if kill_at else \
        [sys.executable, "-m", "rag.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def _ingest(docs: Path, index: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    return _rag("ingest", str(docs), "--index", str(index), "--quiet", kill_at=kill_at)


def _killed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr[-2000:])


def _ids(index: Path) -> tuple[set[str], set[str], set[str]]:
    """Chroma, BM25 and manifest ids as they are on disk (read once, by this process, after every run)."""
    return (set(ChromaStore(path=index / "chroma", collection="documents").ids()),
            set(BM25Index(index / "bm25.npz").ids()), Manifest(index / "manifest.json").chunk_ids())


def _documents(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in FILES:
        shutil.copy(DATA / name, folder / name)
    return folder


def _reference(docs: Path, index: Path, embedder) -> set[str]:
    """The ids a clean ingest of ``docs`` gives (chunk ids derive from the file's path and text)."""
    FolderIngestor(Settings(index_dir=index), embedder=embedder).run(docs)
    return Manifest(index / "manifest.json").chunk_ids()


def test_kill_during_parse_leaves_orphans_that_the_next_run_removes(tmp_path, embedder):
    docs, index = _documents(tmp_path / "docs"), tmp_path / "index"
    _killed(_ingest(docs, index, kill_at="parse:thermolink_t200_manual.pdf"))
    assert not (index / "manifest.json").exists() and not (index / "bm25.npz").exists()
    repaired = _ingest(docs, index)
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert "orphaned chunks from an interrupted run removed" in repaired.stdout  # Chroma had the first files
    assert "3 ingested" in repaired.stdout
    chroma, bm25, manifest = _ids(index)
    assert chroma == bm25 == manifest == _reference(docs, tmp_path / "reference", embedder)


@pytest.mark.parametrize("kill_at", ["bm25-save", "manifest-write"])
def test_kill_while_saving_a_changed_file_is_repaired(tmp_path, kill_at, embedder):
    docs, index = _documents(tmp_path / "docs"), tmp_path / "index"
    clean = _ingest(docs, index)
    assert clean.returncode == 0 and "3 ingested" in clean.stdout, clean.stderr[-2000:]
    policy = docs / "politica_teletrabajo.md"  # edited: "cuatro días" instead of "tres días"
    original = policy.read_text(encoding="utf-8")
    policy.write_text(original.replace("tres días", "cuatro días"), encoding="utf-8")
    before = (index / "manifest.json").read_bytes()
    _killed(_ingest(docs, index, kill_at=kill_at))
    assert (index / "manifest.json").read_bytes() == before  # the manifest is replaced whole or not at all
    # The edit is undone, so the file matches its manifest entry again and the plan calls it unchanged; but
    # Chroma already dropped its old chunks, which the manifest still lists. Only the repair of chunks an
    # index lacks brings them back; the new chunks that no manifest owns must go.
    policy.write_text(original, encoding="utf-8")
    repaired = _ingest(docs, index)
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert "files whose chunks an index lacked, re-ingested: politica_teletrabajo.md" in repaired.stdout
    assert "orphaned chunks from an interrupted run removed" in repaired.stdout
    expected = _reference(docs, tmp_path / "reference", embedder)
    chroma, bm25, manifest = _ids(index)
    assert chroma == bm25 == manifest == expected
    texts = ChromaStore(path=index / "chroma", collection="documents").get(sorted(chroma))
    policy = " ".join(c.text for c in texts.values() if c.metadata.source == "politica_teletrabajo.md")
    assert "tres días" in policy and "cuatro días" not in policy



def test_a_full_disk_stops_the_run_clearly_and_loses_nothing(tmp_path, monkeypatch, capsys, embedder):
    import errno

    from rag.cli import main
    from rag.index import DocumentIndex

    docs, index = _documents(tmp_path / "docs"), tmp_path / "index"
    assert main(["ingest", str(docs), "--index", str(index), "--quiet"]) == 0
    before = (index / "manifest.json").read_bytes()
    (docs / "nuevo.md").write_text("El almacén abre a las 7:00 los lunes.", encoding="utf-8")
    capsys.readouterr()

    def full(self, **_):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(BM25Index, "save", full)  # the first write point of the save
        assert main(["ingest", str(docs), "--index", str(index), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "could not write the index" in err and "the disk is full" in err and "Traceback" not in err
    assert (index / "manifest.json").read_bytes() == before  # the manifest did not advance
    readable = DocumentIndex(index)  # still opens and answers from what was committed
    assert readable.bm25.search(["paracetamol"], 3) and readable.store.count() > 0

    with monkeypatch.context() as patched:  # the same with the write failing while a file's chunks are added
        patched.setattr(DocumentIndex, "add", lambda self, chunks, vectors, **_: full(self))
        assert main(["ingest", str(docs), "--index", str(index), "--quiet"]) == 2
    assert (index / "manifest.json").read_bytes() == before

    assert main(["ingest", str(docs), "--index", str(index), "--quiet"]) == 0  # space again: the run completes
    assert "1 ingested, 3 unchanged" in capsys.readouterr().out
    chroma, bm25, manifest = _ids(index)
    assert chroma == bm25 == manifest == _reference(docs, tmp_path / "reference", embedder)
