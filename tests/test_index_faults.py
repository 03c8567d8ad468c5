"""The fault matrix of issue 44: every file of an index folder removed, truncated, or replaced by an older copy,
then an ingest of another folder, a question (``rag ask``) or a server start-up.

What must hold in every case: ``rag index check`` reports the disagreement before; no chunk of a document the
user kept is deleted (the chunks of both documents are there afterwards, by source and text); a question about
the document ingested after the older copy was taken still cites it; and ``rag index check`` reports nothing
after the repair. Real files, the real embedders and Chroma; the command runs in this process (``rag.cli.main``
and ``Services.build``, which ``rag serve`` calls); tests/test_crash_recovery.py runs real killed processes.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.check import check_index
from ingest.pipeline import FolderIngestor
from rag.index import DocumentIndex
from rag.pipeline import QueryOptions, QueryPipeline
from rag.settings import Settings
from tests.conftest import DATA, ScriptedGenerator

pytestmark = pytest.mark.slow

FILES = ["manifest.json", "chunks.sqlite", "chroma", "bm25.npz", "bm25-windows.npz", "exact-documents.npz",
         "exact-documents.windows.npz", "generation", "vectors.json"]
FAULTS = ["removed", "truncated", "older"]
QUESTION = "¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?"
LATER = "prospecto_paracetamol.pdf"  # ingested after the older copy was taken


@dataclass(frozen=True)
class Base:
    index: Path  # policy, then the leaflet
    older: Path  # the same folder after the policy alone
    other: Path  # another folder, ingested by the "ingest" command
    contents: frozenset[tuple[str, str]]  # (source, text) of every chunk of the complete index


def _contents(index: Path) -> frozenset[tuple[str, str]]:
    """Every chunk in Chroma (the store of record), by source and text."""
    store = DocumentIndex(index).store
    return frozenset((c.metadata.source, c.text) for c in store.get(store.ids()).values())


@pytest.fixture(scope="module")
def base(tmp_path_factory, embedder) -> Base:
    root = tmp_path_factory.mktemp("faults")
    docs, index = root / "docs", root / "index"
    docs.mkdir()
    shutil.copy(DATA / "politica_teletrabajo.md", docs)
    assert not FolderIngestor(Settings(index_dir=index), embedder=embedder).run(docs).failed
    shutil.copytree(index, root / "older")
    shutil.copy(DATA / LATER, docs)
    report = FolderIngestor(Settings(index_dir=index), embedder=embedder).run(docs)
    assert report.ingested == [LATER], report.summary()
    assert _cites_leaflet(index, embedder)  # the first search writes the exact search's files
    other = root / "other"
    other.mkdir()
    (other / "comedor.md").write_text("# Comedor\n\nEl comedor de la empresa abre a las 13:00 y cierra a las 15:30.\n",
                                      encoding="utf-8")
    assert check_index(Settings(index_dir=index)).ok, check_index(Settings(index_dir=index)).summary()
    _as_left_by_a_stopped_process(index)
    _as_left_by_a_stopped_process(root / "older")
    for name in FILES:
        assert (index / name).exists(), f"{name} is not in a fresh index: the matrix would test nothing"
    return Base(index, root / "older", other, _contents(index))


def _as_left_by_a_stopped_process(index: Path) -> None:
    """This process still holds the SQLite files open, their writes in ``-wal`` files; a process that stops
    folds them into the database files (a checkpoint), so a damaged database file is the whole damage."""
    for path in index.rglob("*.sqlite*"):
        if path.suffix in (".sqlite", ".sqlite3"):
            with sqlite3.connect(path) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*-wal", "*-shm", "owner.*"))


def _break(index: Path, name: str, fault: str, older: Path) -> bool:
    """Apply the fault; whether the stores now disagree (not when an older copy is the same file, nor when the
    exact search's cache is removed: an ingest drops it too, and the first search writes it again)."""
    path = index / name
    if fault == "removed":
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        return not name.startswith("exact-")
    elif fault == "truncated":
        target = path / "chroma.sqlite3" if path.is_dir() else path
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    else:
        if (older / name).is_dir():
            shutil.rmtree(path)
            _copy(older / name, path)
        else:
            if path.read_bytes() == (older / name).read_bytes():
                return False
            shutil.copy(older / name, path)
    return True


def _cites_leaflet(index: Path, embedder) -> bool:
    settings = Settings(index_dir=index)
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    answer = pipeline.answer(QUESTION, QueryOptions(answer_mode="extractive"))
    return not answer.abstained and LATER in {c.source for c in answer.citations}


@pytest.mark.parametrize("command", ["ingest", "ask", "serve"])
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", FILES)
def test_a_damaged_index_file_loses_no_document(base, tmp_path, embedder, capsys, name, fault, command):
    from api.services import Services
    from rag.cli import main

    index = tmp_path / "index"
    _copy(base.index, index)
    settings = Settings(index_dir=index)
    if _break(index, name, fault, base.older):
        before = check_index(settings)
        assert not before.ok, f"{name} {fault}: check saw nothing\n{before.summary()}"
    if command == "ingest":
        report = FolderIngestor(settings, embedder=embedder).run(base.other)
        assert report.ingested == ["comedor.md"] and not report.failed, report.summary()
        assert report.repair.undone_chunks == 0, report.summary()  # no run was interrupted
    elif command == "serve":
        pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
        Services.build(settings, pipeline)
    else:
        capsys.readouterr()
        code = main(["ask", QUESTION, "--index", str(index), "--mode", "extractive"])
        out, err = capsys.readouterr()
        assert (code == 0 and LATER in out) or "rag index repair" in err, (code, out, err)
        FolderIngestor(settings, embedder=embedder).repair()  # what 'rag index repair' runs (tested below)
    after = check_index(settings)
    assert after.ok, f"{name} {fault} {command}: still\n{after.summary()}"
    missing = base.contents - _contents(index)
    assert not missing, f"{len(missing)} chunks of kept documents are gone, e.g. {sorted(missing)[:2]}"
    assert _cites_leaflet(index, embedder)


def test_index_check_and_repair_commands(base, tmp_path, capsys):
    """``rag index check`` exits 1 naming the disagreement, ``rag index repair`` fixes it and exits 0, and
    ``check`` is then clean; ``rag ask`` on the damaged index answers and names the repair."""
    from rag.cli import main

    index = tmp_path / "index"
    _copy(base.index, index)
    _break(index, "manifest.json", "older", base.older)
    (index / "bm25.npz").write_bytes(b"not a BM25 index")
    capsys.readouterr()
    assert main(["index", "check", "--index", str(index)]) == 1
    out = capsys.readouterr().out
    assert "chunks.sqlite: " in out and "chunks that no manifest entry owns" in out and "bm25.npz" in out
    assert main(["ask", QUESTION, "--index", str(index), "--mode", "extractive"]) == 0
    out, err = capsys.readouterr()
    assert LATER in out and "bm25.npz" in err and f"rag index repair --index {index}" in err
    assert main(["index", "repair", "--index", str(index)]) == 0
    out = capsys.readouterr().out
    assert f"manifest entries rebuilt from the chunks' metadata: {LATER}" in out and "in step" in out
    assert main(["index", "check", "--index", str(index)]) == 0
    assert base.contents == _contents(index)
