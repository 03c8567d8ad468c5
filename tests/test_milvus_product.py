"""The product on Milvus (issue 36 items 3-5), on real Milvus Lite: ingest, ask, serve, delete and migrate give the
answers the local engine gives on the same folder; Milvus unreachable is one line and exit status 2 at start, and
503 with the reason while serving (and answers again once it is back).

Milvus Lite serves one process per ``.db`` folder: a test that hands a folder to a ``rag`` subprocess lets go of
it first (``_release``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient
from milvus_lite import server_manager_instance

from api.app import create_app
from ingest.migrate import MigrationError, migrate_to_milvus
from ingest.pipeline import FolderIngestor
from rag.backend import open_backend
from rag.index import DocumentIndex
from rag.milvus import MilvusBackend
from rag.pipeline import QueryOptions, QueryPipeline
from rag.settings import Settings
from tests.conftest import DATA, ROOT, ScriptedGenerator, free_port, wait_for

NOTE = ("Normas de la biblioteca municipal.\n\n"
        "El préstamo de libros dura veintiún días y se puede renovar dos veces.\n\n"
        "La sala de estudio abre de lunes a sábado de ocho de la mañana a diez de la noche.\n")
# Questions whose answer is on a known page of a PDF, in a Markdown file and in a text file.
QUESTIONS = ["¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?",
             "¿A qué temperatura se debe conservar el medicamento?",
             "¿Cuántos días por semana se puede teletrabajar?",
             "¿Cuántos días dura el préstamo de libros?"]
EXTRACTIVE = QueryOptions(answer_mode="extractive")


def _docs(root) -> object:
    docs = root / "docs"
    docs.mkdir()
    for name in ("prospecto_paracetamol.pdf", "politica_teletrabajo.md"):
        shutil.copy(DATA / name, docs / name)
    (docs / "biblioteca.txt").write_text(NOTE, encoding="utf-8")
    return docs


def _settings(index_dir, backend: str = "milvus", **overrides) -> Settings:
    return Settings(index_dir=index_dir, backend=backend, rerank=False, answer_mode="extractive", **overrides)


def _pipeline(settings: Settings, embedder) -> QueryPipeline:
    return QueryPipeline(settings, open_backend(settings), embedder, ScriptedGenerator())


def _cited(answer) -> list[tuple[str, int | None]]:
    return [(c.source, c.page) for c in answer.citations]


def _release(path) -> None:
    """Stop this process's Milvus Lite server of ``path`` (as a process exit would), so another process may open it."""
    server_manager_instance.release_server(str(path))


def _rag(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _docs(tmp_path_factory.mktemp("milvus-product"))


@pytest.fixture(scope="module")
def local(folder, embedder) -> QueryPipeline:
    """The folder on the local engine: the answers Milvus must give."""
    settings = _settings(folder.parent / "local", backend="local")
    report = FolderIngestor(settings, embedder=embedder).run(folder)
    assert not report.failed and len(report.ingested) == 3, report.summary()
    return _pipeline(settings, embedder)


@pytest.fixture(scope="module")
def local_answers(local) -> dict[str, object]:
    answers = {q: local.answer(q, EXTRACTIVE) for q in QUESTIONS}
    assert all(not a.abstained and a.citations for a in answers.values()), answers
    assert _cited(answers[QUESTIONS[0]])[0] == ("prospecto_paracetamol.pdf", 2)  # a page to compare
    return answers


def test_ingest_and_ask_on_milvus_cite_what_the_local_engine_cites(folder, local_answers, embedder, tmp_path):
    docs = tmp_path / "docs"  # a copy this test changes
    shutil.copytree(folder, docs)
    settings = _settings(tmp_path / "milvus")
    ingestor = FolderIngestor(settings, embedder=embedder)
    assert isinstance(ingestor.index, MilvusBackend)
    report = ingestor.run(docs)
    assert not report.failed and len(report.ingested) == 3, report.summary()
    assert ingestor.index.count() == report.chunks and (tmp_path / "milvus" / "manifest.json").exists()
    again = FolderIngestor(settings, index=ingestor.index, embedder=embedder).run(docs)
    assert (len(again.ingested), len(again.unchanged), again.chunks) == (0, 3, 0)  # incremental: nothing redone
    pipeline = QueryPipeline(settings, ingestor.index, embedder, ScriptedGenerator())
    for question in QUESTIONS:
        answer = pipeline.answer(question, EXTRACTIVE)
        assert _cited(answer) == _cited(local_answers[question]), question
        assert answer.text == local_answers[question].text, question
    # A changed file is ingested again, its old chunks replaced; a removed one goes with its chunks.
    (docs / "biblioteca.txt").write_text(NOTE.replace("veintiún", "catorce"), encoding="utf-8")
    (docs / "politica_teletrabajo.md").unlink()
    ingestor = FolderIngestor(settings, index=ingestor.index, embedder=embedder)
    report = ingestor.run(docs)
    assert (report.ingested, report.removed) == (["biblioteca.txt"], ["politica_teletrabajo.md"]), report.summary()
    assert ingestor.index.allowed({"source": "politica_teletrabajo.md"}) == set()
    assert "catorce" in pipeline.answer(QUESTIONS[3], EXTRACTIVE).text
    assert set(ingestor.index.ids()) == ingestor.manifest.chunk_ids()
    ingestor.index.close()
    _release(tmp_path / "milvus" / "milvus.db")


def test_rag_ingest_and_ask_on_milvus_from_the_command_line(folder, local_answers, tmp_path):
    index = tmp_path / "index"
    env = {"RAG_BACKEND": "milvus", "RAG_RERANK": "false"}
    first = _rag("ingest", str(folder), "--index", str(index), "--quiet", **env)
    assert first.returncode == 0 and "3 ingested" in first.stdout, first.stderr[-3000:]
    second = _rag("ingest", str(folder), "--index", str(index), "--quiet", **env)
    assert second.returncode == 0 and "0 ingested, 3 unchanged" in second.stdout, second.stderr[-3000:]
    asked = _rag("ask", QUESTIONS[0], "--index", str(index), "--mode", "extractive", "--json", **env)
    assert asked.returncode == 0, asked.stderr[-3000:]
    answer = json.loads(asked.stdout)
    assert [(c["source"], c["page"]) for c in answer["citations"]] == _cited(local_answers[QUESTIONS[0]])
    assert (index / "milvus.db").is_dir() and not (index / "chroma").exists()  # nothing kept by the local engine


def test_the_api_lists_answers_and_deletes_on_milvus(folder, local_answers, embedder, tmp_path):
    settings = _settings(tmp_path / "milvus")
    FolderIngestor(settings, embedder=embedder).run(folder)
    pipeline = _pipeline(settings, embedder)
    client = TestClient(create_app(settings, pipeline=pipeline))
    assert client.get("/ready").json()["chunks"] == pipeline.index.count() > 0
    listed = client.get("/v1/documents").json()["data"]
    assert sorted(d["source"] for d in listed) == ["biblioteca.txt", "politica_teletrabajo.md",
                                                   "prospecto_paracetamol.pdf"]
    body = client.post("/v1/query", json={"question": QUESTIONS[0], "answer_mode": "extractive"}).json()
    assert [(c["source"], c["page"]) for c in body["citations"]] == _cited(local_answers[QUESTIONS[0]])
    leaflet = next(d for d in listed if d["source"] == "prospecto_paracetamol.pdf")
    before = pipeline.index.count()
    assert client.delete(f"/v1/documents/{leaflet['id']}").status_code == 200
    assert pipeline.index.allowed({"doc_id": leaflet["id"]}) == set()  # its chunks, both units (one row each)
    assert pipeline.index.count() == before - leaflet["chunks"]
    assert "prospecto_paracetamol.pdf" not in {d["source"] for d in client.get("/v1/documents").json()["data"]}
    body = client.post("/v1/query", json={"question": QUESTIONS[0], "answer_mode": "extractive"}).json()
    assert "prospecto_paracetamol.pdf" not in {c["source"] for c in body["citations"]}
    pipeline.index.close()
    _release(tmp_path / "milvus" / "milvus.db")


def test_a_migrated_index_gives_the_same_answers_with_the_vectors_copied(local, local_answers, embedder, tmp_path):
    source = tmp_path / "local"
    shutil.copytree(local.settings.index_dir, source)
    uri = str(tmp_path / "milvus" / "milvus.db")
    command = ["index", "migrate", "--to", "milvus", "--uri", uri, "--index", str(source),
               "--target-index", str(tmp_path / "milvus")]
    first = _rag(*command)
    assert first.returncode == 0, first.stderr[-3000:]
    chunks = DocumentIndex(source).count()
    assert f"3 documents, {chunks} chunks" in first.stdout and f"{chunks} added, 0 already there" in first.stdout
    second = _rag(*command)  # idempotent: nothing added twice
    assert second.returncode == 0 and f"0 added, {chunks} already there" in second.stdout, second.stdout
    assert f"Milvus holds {chunks} chunks" in second.stdout
    settings = _settings(tmp_path / "milvus", milvus_uri=uri)
    pipeline = _pipeline(settings, embedder)
    for question in QUESTIONS:
        answer = pipeline.answer(question, EXTRACTIVE)
        assert _cited(answer) == _cited(local_answers[question]) and answer.text == local_answers[question].text
    ids = sorted(DocumentIndex(source).store.ids())  # copied vectors, not embedded again: the same numbers
    rows = pipeline.index.client.query(pipeline.index.name, ids=ids, output_fields=["vector"])
    stored = DocumentIndex(source).store.vectors(ids)
    assert len(rows) == len(ids) and all(np.allclose(r["vector"], stored[r["id"]], atol=1e-6) for r in rows)
    assert FolderIngestor(settings, index=pipeline.index, embedder=embedder).repair().changed is False
    pipeline.index.close()
    _release(uri)


def _records(folder) -> dict[str, bytes]:
    """The local index's files of record other than its databases (whose readers touch their shared memory)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".json", ".npz") or p.name == "generation"}


def test_a_migration_cut_half_way_resumes_and_leaves_the_source_as_it_was(local, tmp_path):
    source = tmp_path / "local"
    shutil.copytree(local.settings.index_dir, source)
    before = _records(source)
    index = DocumentIndex(source)
    target = MilvusBackend(str(tmp_path / "milvus.db"))
    real_add, calls = target.add, []

    def failing_add(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        real_add(*args, **kwargs)

    target.add = failing_add
    with pytest.raises(RuntimeError, match="connection lost"):
        migrate_to_milvus(index, target, tmp_path / "target", batch=1)  # a document per batch
    copied = target.count()
    assert 0 < copied < index.count() and not (tmp_path / "target" / "manifest.json").exists()
    target.add = real_add
    report = migrate_to_milvus(index, target, tmp_path / "target", batch=1)
    assert (report.present, report.added, report.total) == (copied, index.count() - copied, index.count())
    assert (tmp_path / "target" / "manifest.json").read_bytes() == (source / "manifest.json").read_bytes()
    assert _records(source) == before and DocumentIndex(source).count() == index.count()
    with pytest.raises(MigrationError, match="another index's manifest"):
        other = tmp_path / "other"
        other.mkdir()
        (other / "manifest.json").write_text('{"version": 1, "files": {"x": {}}}')
        migrate_to_milvus(index, target, other)
    target.close()


def test_milvus_unreachable_at_start_is_one_line_naming_it_and_exit_status_2(folder, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"RAG_BACKEND": "milvus", "RAG_MILVUS_URI": uri}
    index = str(tmp_path / "index")
    for args in (("ingest", str(folder), "--index", index, "--quiet"), ("ask", "¿Qué es?", "--index", index),
                 ("serve", "--index", index, "--port", str(free_port()))):
        run = _rag(*args, **env)
        assert run.returncode == 2, (args, run.stderr[-2000:])
        assert run.stderr.strip().splitlines() == [f"error: Milvus at {uri} cannot be used: Fail connecting to "
                                                   f"server on {uri.removeprefix('http://')}, illegal connection "
                                                   "params or server unavailable"], (args, run.stderr[-2000:])
    migrate = _rag("index", "migrate", "--to", "milvus", "--uri", uri, "--index", index)
    assert migrate.returncode == 2 and "Traceback" not in migrate.stderr, migrate.stderr[-2000:]


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _lite_server(data_dir, port: int) -> subprocess.Popen:
    """Milvus Lite as a server process on a loopback port (what a Milvus server is to us)."""
    server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir),
                               "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for(lambda: server.poll() is not None or _port_open(port), f"Milvus Lite on port {port}")
    assert server.poll() is None, "the Milvus Lite server exited"
    return server


def test_the_api_answers_503_with_the_reason_while_milvus_is_away_and_again_once_back(folder, embedder, tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = _lite_server(tmp_path / "server.db", port)
    try:
        settings = _settings(tmp_path / "index", milvus_uri=uri)
        FolderIngestor(settings, embedder=embedder).run(folder)
        client = TestClient(create_app(settings, pipeline=_pipeline(settings, embedder)))
        question = {"question": QUESTIONS[2], "answer_mode": "extractive"}
        assert client.get("/ready").status_code == 200 and client.post("/v1/query", json=question).status_code == 200
        server.terminate()
        server.wait(timeout=60)
        ready = client.get("/ready")
        assert ready.status_code == 503 and uri in ready.json()["detail"], ready.text
        asked = client.post("/v1/query", json=question)
        assert asked.status_code == 503 and asked.headers["retry-after"], asked.text
        assert f"Milvus at {uri} cannot be used" in asked.json()["detail"]
        assert client.get("/v1/documents").status_code == 200  # the list is the manifest's: still there
        server = _lite_server(tmp_path / "server.db", port)
        wait_for(lambda: client.get("/ready").status_code == 200, "/ready to say 200 with Milvus back")
        back = client.post("/v1/query", json=question)
        assert back.status_code == 200 and back.json()["citations"][0]["source"] == "politica_teletrabajo.md"
    finally:
        server.terminate()
        server.wait(timeout=60)
