"""Collections: named document sets in one index folder whose answers never mix, over HTTP and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.pipeline import FolderIngestor
from rag import collections
from rag.cli import main
from rag.errors import InvalidRequest
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from rag.settings import Settings
from tests.conftest import DATA, ScriptedGenerator

LEGAL = ("El plazo para interponer el recurso de alzada será de un mes si el acto fuera expreso. "
         "Transcurrido dicho plazo, la resolución será firme a todos los efectos.")
CLINIC = ("La consulta de pediatría abre de lunes a viernes de ocho a tres. "
          "Las vacunas de la gripe se ponen en la sala dos sin cita previa.")


def test_collection_names_and_folders(tmp_path: Path):
    settings = Settings(index_dir=tmp_path)
    legal = settings.for_collection("legal")
    assert legal.index_dir == tmp_path / "collections" / "legal"
    assert legal.collection == "documents-legal" and legal.chroma_dir == tmp_path / "chroma"
    assert legal.uploads == tmp_path / "collections" / "legal" / "uploads"
    assert settings.for_collection("default") is settings and settings.for_collection(None) is settings
    for bad in ("", "Legal", "../x", "a b", "-x", "x" * 64):
        with pytest.raises(InvalidRequest):
            collections.check_name(bad)
    assert collections.list_collections(tmp_path) == ["default"]
    assert collections.create(tmp_path, "legal") and not collections.create(tmp_path, "legal")
    assert collections.list_collections(tmp_path) == ["default", "legal"]


@pytest.fixture
def client(tmp_path, embedder):
    settings = Settings(index_dir=tmp_path / "index")
    FolderIngestor(settings, embedder=embedder).run(DATA / "politica_teletrabajo.md")  # an index made before
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder,
                             ScriptedGenerator(*["respuesta"] * 5))
    return TestClient(create_app(settings, pipeline=pipeline))


def _sources(answer: dict) -> set[str]:
    return {c["source"] for c in answer["citations"]}


def test_answers_never_mix_collections_over_http(client):
    assert client.get("/v1/collections").json()["data"] == [{"name": "default", "documents": 1}]
    assert client.post("/v1/collections", json={"name": "legal"}).status_code == 201
    assert client.post("/v1/collections", json={"name": "legal"}).status_code == 200  # already there
    assert client.post("/v1/collections", json={"name": "Bad Name"}).status_code == 422
    assert client.post("/v1/collections", json={"name": "clinic"}).status_code == 201
    for name, text in (("legal", LEGAL), ("clinic", CLINIC)):
        r = client.post("/v1/ingest/text", json={"file_name": f"{name}-nota", "text": text, "collection": name})
        assert r.status_code == 200, r.text

    names = {c["name"]: c["documents"] for c in client.get("/v1/collections").json()["data"]}
    assert names == {"default": 1, "legal": 1, "clinic": 1}
    assert [d["source"] for d in client.get("/v1/documents", params={"collection": "legal"}).json()["data"]] \
        == ["legal-nota.txt"]
    assert "legal-nota.txt" not in str(client.get("/v1/documents").json())

    question = "¿Cuál es el plazo para interponer el recurso de alzada?"
    legal = client.post("/v1/query", json={"question": question, "collection": "legal"}).json()
    assert not legal["abstained"] and _sources(legal) == {"legal-nota.txt"} and "un mes" in legal["answer"]
    for other in (None, "clinic"):
        answer = client.post("/v1/query", json={"question": question, "collection": other}).json()
        assert "legal-nota.txt" not in _sources(answer)  # abstains, or cites its own documents only
    chunks = client.post("/v1/chunks", json={"text": "vacunas de la gripe", "collection": "clinic"}).json()
    assert {c["source"] for c in chunks["data"]} == {"clinic-nota.txt"}

    # OpenAI clients pick a collection by model name, as AnythingLLM's workspaces.
    models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert {"default", "legal", "clinic"} <= set(models)
    chat = client.post("/v1/chat/completions", json={"model": "clinic", "messages": [
        {"role": "user", "content": "¿Dónde se ponen las vacunas de la gripe?"}]}).json()
    assert {s["source"] for s in chat["choices"][0]["sources"]} == {"clinic-nota.txt"}

    assert client.post("/v1/query", json={"question": question, "collection": "nope"}).status_code == 404
    assert client.get("/v1/documents", params={"collection": "nope"}).status_code == 404
    assert client.delete("/v1/collections/default").status_code == 422
    assert client.delete("/v1/collections/legal").json() == {"deleted": "legal"}
    assert client.post("/v1/query", json={"question": question, "collection": "legal"}).status_code == 404
    assert client.delete("/v1/collections/legal").status_code == 404
    # Made again, it starts empty (nothing of the deleted one comes back).
    assert client.post("/v1/collections", json={"name": "legal"}).status_code == 201
    assert client.get("/v1/documents", params={"collection": "legal"}).json()["data"] == []
    again = client.post("/v1/query", json={"question": question, "collection": "legal"}).json()
    assert again["abstained"] and not again["citations"]


def test_cli_ingests_and_asks_per_collection(tmp_path: Path, capsys):
    index = tmp_path / "index"
    legal_docs = tmp_path / "legal"
    legal_docs.mkdir()
    (legal_docs / "alzada.md").write_text(LEGAL, encoding="utf-8")
    shutil.copy(DATA / "politica_teletrabajo.md", tmp_path / "teletrabajo.md")
    assert main(["ingest", str(tmp_path / "teletrabajo.md"), "--index", str(index), "--quiet"]) == 0
    assert main(["ingest", str(legal_docs), "--index", str(index), "--collection", "legal", "--quiet"]) == 0
    capsys.readouterr()
    question = "¿Cuál es el plazo para interponer el recurso de alzada?"
    assert main(["ask", question, "--index", str(index), "--collection", "legal", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert _sources(answer) == {"alzada.md"} and "un mes" in answer["answer"]
    assert main(["ask", question, "--index", str(index), "--json"]) == 0
    assert "alzada.md" not in _sources(json.loads(capsys.readouterr().out))
    assert main(["ask", question, "--index", str(index), "--collection", "nope"]) == 2
    assert "no collection 'nope'" in capsys.readouterr().err
