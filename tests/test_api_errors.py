"""Errors that tell the truth: the caller's mistakes are 4xx naming what is wrong; the server's own faults are
a 500 with a request id (the stack trace only in the log), never a 422 that blames the caller."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.pipeline import FolderIngestor
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from rag.settings import Settings
from tests.conftest import DATA, ScriptedGenerator


@pytest.fixture
def pipeline(tmp_path, embedder) -> QueryPipeline:
    settings = Settings(index_dir=tmp_path / "index")
    FolderIngestor(settings, embedder=embedder).run(DATA / "politica_teletrabajo.md")
    return QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())


def test_an_internal_fault_is_a_500_with_a_request_id_not_a_422(pipeline, caplog, monkeypatch):
    def broken(*_args, **_kwargs):
        raise ValueError("index shape mismatch (a bug of ours)")  # a ValueError that is no fault of the caller

    monkeypatch.setattr(pipeline.retriever, "retrieve", broken)
    client = TestClient(create_app(pipeline.settings, pipeline=pipeline), raise_server_exceptions=False)
    caplog.set_level(logging.ERROR)
    response = client.post("/v1/query", json={"question": "¿Cuántos días se puede teletrabajar?"})
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"detail", "request_id"} and len(body["request_id"]) == 12
    assert "Traceback" not in response.text and "shape mismatch" not in response.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert body["request_id"] in logged
    assert any(r.exc_info and "shape mismatch" in str(r.exc_info[1]) for r in caplog.records)


def test_what_the_caller_asked_wrong_is_a_422_naming_it(pipeline):
    client = TestClient(create_app(pipeline.settings, pipeline=pipeline))
    response = client.post("/v1/query", json={"question": "¿Cuántos días?", "query_expansion": ["telepathy"]})
    assert response.status_code == 422 and "query_expansion" in response.text
    response = client.post("/v1/query", json={"question": "   "})
    assert response.status_code == 422 and "question" in response.text


def test_behind_a_reverse_proxy_under_a_sub_path(pipeline):
    # `rag serve --root-path /rag` hands the sub-path to the server (uvicorn), as TestClient does here.
    client = TestClient(create_app(pipeline.settings, pipeline=pipeline), root_path="/rag")
    assert client.get("/openapi.json").json()["servers"] == [{"url": "/rag"}]
    assert "/rag/openapi.json" in client.get("/docs").text
    assert client.get("/v1/documents").status_code == 200


def test_cors_is_off_unless_origins_are_listed(pipeline):
    preflight = {"origin": "https://intranet.example", "access-control-request-method": "POST"}
    closed = TestClient(create_app(pipeline.settings, pipeline=pipeline))
    assert "access-control-allow-origin" not in closed.options("/v1/query", headers=preflight).headers
    opened = TestClient(create_app(pipeline.settings.with_overrides(cors_origins=["https://intranet.example"]),
                                   pipeline=pipeline))
    allowed = opened.options("/v1/query", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://intranet.example"
    other = opened.options("/v1/query", headers=preflight | {"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
