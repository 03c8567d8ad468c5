"""Routes with FastAPI's TestClient over the demo index (real embedder, scripted generator)."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from tests.conftest import ScriptedGenerator


@pytest.fixture
def client(demo_settings, embedder):
    generator = ScriptedGenerator(*["Las personas pueden teletrabajar hasta tres días por semana [1]."] * 5)
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, generator)
    return TestClient(create_app(demo_settings, pipeline=pipeline))


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_query_shape(client):
    body = client.post("/v1/query", json={"question": "¿Cuántos días por semana se puede teletrabajar?",
                                          "answer_mode": "extractive"}).json()
    assert set(body) == {"answer", "abstained", "citations", "trace"}
    assert "tres días por semana" in body["answer"]
    assert body["citations"][0]["source"] == "politica_teletrabajo.md"
    assert body["trace"]["language"] == "es" and "retrieval" in body["trace"]["timings_ms"]


def test_stages_switch_per_request(client):
    question = "¿Qué significa el error E7 y cuántos días se puede teletrabajar?"
    plain = client.post("/v1/query", json={"question": question, "answer_mode": "extractive", "rerank": False,
                                           "query_expansion": []}).json()["trace"]
    assert "reranker" not in plain and plain["expansions"] == [] and "rerank" not in plain["timings_ms"]
    full = client.post("/v1/query", json={"question": question, "answer_mode": "generative", "rerank": True,
                                          "sampling_top_k": 5, "repeat_penalty": 1.2}).json()["trace"]
    assert full["reranker"] == "embedder" and [e["kind"] for e in full["expansions"]] == ["sub-question"] * 2
    assert full["compression"]["tokens_after"] <= full["compression"]["budget"]


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "question"),
    ({"question": ""}, "question"),
    ({"question": "hola", "top_k": 0}, "top_k"),
    ({"question": "hola", "answer_mode": "poetry"}, "answer_mode"),
    ({"question": "hola", "unknown": 1}, "unknown"),
    ({"question": "hola", "query_expansion": ["synonyms"]}, "query_expansion"),
    ({"question": "hola", "repeat_penalty": -1}, "repeat_penalty"),
])
def test_bad_input_is_a_422_naming_the_field(client, payload, field):
    response = client.post("/v1/query", json=payload)
    assert response.status_code == 422
    assert field in [e["field"].split(".")[0] for e in response.json()["errors"]]


def test_malformed_json_is_a_422(client):
    response = client.post("/v1/query", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
