"""Routes with FastAPI's TestClient over the demo index (real embedder, scripted generator)."""

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from tests.conftest import ScriptedGenerator


@pytest.fixture
def generator():
    return ScriptedGenerator(*["Las personas pueden teletrabajar hasta tres días por semana [1]."] * 5)


@pytest.fixture
def client(demo_settings, embedder, generator):
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, generator)
    return TestClient(create_app(demo_settings, pipeline=pipeline))


def _events(response) -> list[tuple[str, dict]]:
    events = []
    for block in response.text.strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_query_shape(client):
    body = client.post("/v1/query", json={"question": "¿Cuántos días por semana se puede teletrabajar?",
                                          "answer_mode": "extractive"}).json()
    assert set(body) == {"answer", "abstained", "citations", "trace", "short_answer", "short_start", "short_end",
                         "short_citation"}
    assert "tres días por semana" in body["answer"]
    assert body["citations"][0]["source"] == "politica_teletrabajo.md"
    assert body["trace"]["language"] == "es" and "retrieval" in body["trace"]["timings_ms"]


def test_stages_switch_per_request(client, generator):
    question = "¿Qué significa el error E7 y cuántos días se puede teletrabajar?"
    plain = client.post("/v1/query", json={"question": question, "answer_mode": "extractive", "rerank": False,
                                           "query_expansion": []}).json()["trace"]
    assert "reranker" not in plain and plain["expansions"] == [] and "rerank" not in plain["timings_ms"]
    full = client.post("/v1/query", json={"question": question, "answer_mode": "generative", "rerank": True,
                                          "sampling_top_k": 5, "repeat_penalty": 1.2}).json()["trace"]
    assert full["reranker"] == "none" and [e["kind"] for e in full["expansions"]] == ["sub-question"] * 2
    assert full["compression"]["tokens_after"] <= full["compression"]["budget"]
    # The sampling fields reach the model, each under its own name.
    assert len(generator.params) == 1
    assert (generator.params[0].top_k, generator.params[0].repeat_penalty) == (5, 1.2)


@pytest.mark.parametrize(("field", "value"), [("temperature", 0.0), ("temperature", 2.0), ("top_p", 1.0),
                                              ("top_p", 0.01), ("max_tokens", 1), ("seed", 7)])
def test_sampling_bounds_are_accepted_and_reach_the_model(client, generator, field, value):
    response = client.post("/v1/query", json={"question": "¿Cuántos días por semana se puede teletrabajar?",
                                              "answer_mode": "generative", field: value})
    assert response.status_code == 200, response.text
    assert getattr(generator.params[-1], field) == value


def test_abstention_over_http_and_sse(client, generator):
    question = "¿Quién ganó el mundial de fútbol de 2010?"
    body = client.post("/v1/query", json={"question": question}).json()
    assert body["abstained"] and body["answer"] == "No he encontrado esta información en los documentos."
    assert body["citations"] == [] and body["trace"]["abstain_reason"]
    events = _events(client.post("/v1/query", json={"question": question, "stream": True}))
    assert [kind for kind, _ in events] == ["answer"]  # nothing was generated: no tokens
    assert events[0][1]["abstained"] and events[0][1]["answer"] == body["answer"]
    assert generator.params == []  # the model was never asked


def test_model_saying_it_does_not_know_is_an_abstention(client, generator):
    generator.replies = ["I could not find this in the documents."]
    question = "What does error E7 mean on the thermostat?"
    events = _events(client.post("/v1/query", json={"question": question, "answer_mode": "generative",
                                                    "stream": True}))
    assert [kind for kind, _ in events][-1] == "answer" and any(kind == "token" for kind, _ in events)
    final = events[-1][1]
    assert final["abstained"] and final["citations"] == [] and final["answer"] == "I could not find this in the documents."
    assert final["trace"]["abstain_reason"] == "the model said the sources do not contain the answer"


@pytest.mark.parametrize(("filters", "check"), [
    ({"page_min": 2}, lambda c: c["page"] is not None and c["page"] >= 2),
    ({"page_max": 1}, lambda c: c["page"] == 1),
    ({"element_types": ["table"]}, lambda c: c["element_type"] == "table" and c["text"].startswith("|")),
    ({"sources": ["prospecto_paracetamol.pdf"], "page_min": 2, "page_max": 2},
     lambda c: (c["source"], c["page"]) == ("prospecto_paracetamol.pdf", 2)),
])
def test_filters_restrict_every_returned_chunk(client, filters, check):
    data = client.post("/v1/chunks", json={"text": "dosis de paracetamol", "limit": 20, "filters": filters}).json()["data"]
    assert data and all(check(c) for c in data), data


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "question"),
    ({"question": ""}, "question"),
    ({"question": "hola", "top_k": 0}, "top_k"),
    ({"question": "hola", "answer_mode": "poetry"}, "answer_mode"),
    ({"question": "hola", "unknown": 1}, "unknown"),
    ({"question": "hola", "query_expansion": ["synonyms"]}, "query_expansion"),
    ({"question": "hola", "repeat_penalty": -1}, "repeat_penalty"),
    ({"question": "hola", "temperature": -0.1}, "temperature"),
    ({"question": "hola", "temperature": 2.01}, "temperature"),
    ({"question": "hola", "top_p": 0}, "top_p"),
    ({"question": "hola", "top_p": 1.5}, "top_p"),
    ({"question": "hola", "filters": {"page_min": 0}}, "filters"),
    ({"question": "hola", "filters": {"element_types": ["image"]}}, "filters"),
])
def test_bad_input_is_a_422_naming_the_field(client, payload, field):
    response = client.post("/v1/query", json=payload)
    assert response.status_code == 422
    assert field in [e["field"].split(".")[0] for e in response.json()["errors"]]


def test_malformed_json_is_a_422(client):
    response = client.post("/v1/query", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
