"""A real `rag ingest` process killed with SIGKILL at four points; the next real run repairs the index.

Each kill leaves on disk exactly what a crash leaves (the journal and Chroma write as they go; the BM25 file and
the manifest are saved at the end). After the repair run, Chroma ids = BM25 ids = manifest ids, the chunks are
those a clean ingest of the same folder produces, and the summary says what was repaired: a write that reached
Chroma whole is kept, one cut half-way is undone, and nothing else is deleted.
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


def _reference(docs: Path, index: Path, embedder) -> frozenset[tuple[str, str]]:
    """What a clean ingest of ``docs`` holds, by source and text (document ids are random, so ids differ)."""
    FolderIngestor(Settings(index_dir=index), embedder=embedder).run(docs)
    return _contents(index)


def _contents(index: Path) -> frozenset[tuple[str, str]]:
    store = ChromaStore(path=index / "chroma", collection="documents")
    return frozenset((c.metadata.source, c.text) for c in store.get(store.ids()).values())


def test_kill_during_parse_keeps_the_files_written_before(tmp_path, embedder):
    docs, index = _documents(tmp_path / "docs"), tmp_path / "index"
    _killed(_ingest(docs, index, kill_at="parse:thermolink_t200_manual.pdf"))
    assert not (index / "manifest.json").exists() and not (index / "bm25.npz").exists()
    assert (index / "journal.jsonl").exists()
    repaired = _ingest(docs, index)
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    # The two files whose chunks reached Chroma whole are kept: only the third is read again.
    assert ("2 files an interrupted run had written, kept: politica_teletrabajo.md, prospecto_paracetamol.pdf"
            in repaired.stdout), repaired.stdout
    assert "1 ingested, 2 unchanged" in repaired.stdout
    chroma, bm25, manifest = _ids(index)
    assert chroma == bm25 == manifest
    assert _contents(index) == _reference(docs, tmp_path / "reference", embedder)
    assert not (index / "journal.jsonl").exists()


def test_kill_during_a_write_undoes_only_that_write(tmp_path, embedder):
    """A SIGKILL half-way through writing a file's chunks, then an ingest of a different folder: the half-written
    file's chunks are undone, nothing else (the documents of earlier runs and the file finished before it stay)."""
    first, index = tmp_path / "first", tmp_path / "index"
    first.mkdir()
    shutil.copy(DATA / "politica_teletrabajo.md", first)
    assert _ingest(first, index).returncode == 0
    kept = _contents(index)
    second = tmp_path / "second"
    second.mkdir()
    for name in ("prospecto_paracetamol.pdf", "thermolink_t200_manual.pdf"):
        shutil.copy(DATA / name, second)
    _killed(_ingest(second, index, kill_at="chroma-add:thermolink_t200_manual.pdf"))
    half = {text for source, text in _contents(index) if source == "thermolink_t200_manual.pdf"}
    assert half, "the kill came before any chunk of the manual was written: the test would prove nothing"
    third = tmp_path / "third"
    third.mkdir()
    (third / "comedor.md").write_text("El comedor abre a las 13:00.\n", encoding="utf-8")
    repaired = _ingest(third, index)
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert f"{len(half)} chunks of an interrupted run undone (thermolink_t200_manual.pdf)" in repaired.stdout, \
        repaired.stdout
    after = _contents(index)
    assert kept <= after  # the first run's document
    sources = {source for source, _ in after}
    assert sources == {"politica_teletrabajo.md", "prospecto_paracetamol.pdf", "comedor.md"}
    chroma, bm25, manifest = _ids(index)
    assert chroma == bm25 == manifest


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
    # The edited version reached Chroma whole before the kill: the repair keeps it (its journal says so), and the
    # file, edited back meanwhile, no longer matches it, so the run reads it again.
    policy.write_text(original, encoding="utf-8")
    repaired = _ingest(docs, index)
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert "files an interrupted run had written, kept: politica_teletrabajo.md" in repaired.stdout, repaired.stdout
    assert "1 ingested, 2 unchanged" in repaired.stdout
    chroma, bm25, manifest = _ids(index)
    assert chroma == bm25 == manifest
    assert _contents(index) == _reference(docs, tmp_path / "reference", embedder)
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

    # The chunks of nuevo.md reached Chroma before the save failed: the next run's repair keeps them (its journal
    # says the write was whole) and records them. Then a write that fails half-way: nothing of it is recorded.
    (docs / "otro.md").write_text("La sala de reuniones se reserva con un día de antelación.", encoding="utf-8")
    with monkeypatch.context() as patched:
        patched.setattr(DocumentIndex, "add", lambda self, chunks, vectors, **_: full(self))
        assert main(["ingest", str(docs), "--index", str(index), "--quiet"]) == 2
    repaired = Manifest(index / "manifest.json")
    assert {e.source for e in repaired.files.values()} == set(FILES) | {"nuevo.md"}

    assert main(["ingest", str(docs), "--index", str(index), "--quiet"]) == 0  # space again: the run completes
    assert "1 ingested, 4 unchanged" in capsys.readouterr().out
    chroma, bm25, manifest = _ids(index)
    assert chroma == bm25 == manifest
    assert _contents(index) == _reference(docs, tmp_path / "reference", embedder)
