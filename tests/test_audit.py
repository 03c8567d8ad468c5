"""The audit log: off by default; when set, one JSON line per request, questions hashed unless told, rotated."""

from __future__ import annotations

import hashlib
import json

from fastapi.testclient import TestClient

from api.app import create_app
from ingest.pipeline import FolderIngestor
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from rag.settings import Settings
from tests.conftest import DATA, ScriptedGenerator

QUESTION = "¿Cuántos días por semana se puede teletrabajar?"


def _client(settings: Settings, embedder) -> TestClient:
    FolderIngestor(settings, embedder=embedder).run(DATA / "politica_teletrabajo.md")
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    return TestClient(create_app(settings, pipeline=pipeline))


def test_audit_lines_name_key_collection_route_and_hash_the_question(tmp_path, embedder):
    log = tmp_path / "audit" / "audit.jsonl"
    settings = Settings(index_dir=tmp_path / "index", api_key="audit-k3y", audit_log=log, audit_max_mb=0.002)
    client = _client(settings, embedder)
    key = {"authorization": "Bearer audit-k3y"}
    answer = client.post("/v1/query", headers=key, json={"question": QUESTION}).json()
    assert client.get("/v1/documents").status_code == 401
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    asked = next(line for line in lines if line["route"] == "/v1/query")
    assert asked["key"] == "RAG_API_KEY" and asked["collection"] == "default" and asked["status"] == 200
    assert asked["question_sha256"] == hashlib.sha256(QUESTION.encode()).hexdigest()
    assert asked["cited"] == sorted({c["chunk_id"].split("-")[0] for c in answer["citations"]}) != []
    refused = next(line for line in lines if line["route"] == "/v1/documents")
    assert refused["status"] == 401 and refused["key"] is None
    text = log.read_text(encoding="utf-8")
    assert QUESTION not in text and "audit-k3y" not in text
    for _ in range(30):  # past 2 KB: the file rolls over
        client.get("/v1/documents", headers=key)
    assert (log.parent / "audit.jsonl.1").exists()


def test_audit_log_is_off_by_default_and_can_keep_question_text(tmp_path, embedder):
    assert Settings().audit_log is None
    log = tmp_path / "audit.jsonl"
    client = _client(Settings(index_dir=tmp_path / "index", audit_log=log, audit_questions="text"), embedder)
    client.post("/v1/query", json={"question": QUESTION})
    (line,) = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if "/v1/query" in x]
    assert line["question"] == QUESTION and line["key"] == "anyone"
