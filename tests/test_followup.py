"""Follow-up questions are searched with the topic of the question before them (rules, no model)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.followup import contextualize, is_follow_up
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from tests.conftest import ScriptedGenerator

PREVIOUS = "¿Cuál es la dosis máxima diaria de paracetamol en adultos?"


@pytest.mark.parametrize(("question", "language", "follows"), [
    ("¿Y en niños?", "es", True), ("¿Y las leves?", "es", True), ("¿Por qué?", "es", True),
    ("¿Qué hay de los adolescentes?", "es", True), ("What about children?", "en", True),
    ("and in English?", "en", True),
    ("¿Cuál es la capital del Estado?", "es", False), ("What does error E7 mean?", "en", False),
])
def test_what_counts_as_a_follow_up(question, language, follows):
    assert is_follow_up(question, language) is follows


def test_a_follow_up_carries_the_earlier_topic_and_a_new_question_does_not():
    searched = contextualize("¿Y en niños?", [PREVIOUS], "es")
    assert searched.endswith("¿Y en niños?") and "paracetamol" in searched and "adultos" in searched
    assert contextualize("¿Cuál es la capital del Estado?", [PREVIOUS], "es") == "¿Cuál es la capital del Estado?"
    assert contextualize("¿Y en niños?", [], "es") == "¿Y en niños?"


def test_follow_ups_over_http_query_and_chat(demo_settings, embedder):
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, ScriptedGenerator())
    client = TestClient(create_app(demo_settings, pipeline=pipeline))
    alone = client.post("/v1/query", json={"question": "¿Y en niños?"}).json()
    followed = client.post("/v1/query", json={"question": "¿Y en niños?", "history": [PREVIOUS]}).json()
    assert followed["trace"]["follow_up"]["searched"].endswith("¿Y en niños?")
    assert not followed["abstained"] and "niños" in followed["answer"].lower()
    assert "prospecto_paracetamol.pdf" in {c["source"] for c in followed["citations"]}
    assert "follow_up" not in alone["trace"]
    chat = client.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": PREVIOUS}, {"role": "assistant", "content": "Hasta 4 g al día."},
        {"role": "user", "content": "¿Y en niños?"}]}).json()
    assert chat["trace"]["follow_up"]["asked"] == "¿Y en niños?"
    assert "prospecto_paracetamol.pdf" in {s["source"] for s in chat["choices"][0]["sources"]}


def test_a_capable_model_rewrites_follow_ups_and_a_bad_rewrite_falls_back_to_the_rules(demo_settings, embedder):
    from rag.followup import rewrite_with_model
    from rag.pipeline import QueryOptions

    good = ScriptedGenerator("¿Cuál es la dosis máxima diaria de paracetamol en niños?")
    assert rewrite_with_model(good, "¿Y en niños?", [PREVIOUS], "es") == \
        "¿Cuál es la dosis máxima diaria de paracetamol en niños?"
    # A rewrite that drops what the follow-up asks ("niños"), or that rambles, is not used.
    assert rewrite_with_model(ScriptedGenerator("¿Cómo son los tres días de paracetamol en adultos?"),
                              "¿Y en niños?", [PREVIOUS], "es") is None
    assert rewrite_with_model(ScriptedGenerator("Claro.\n¿Dosis en niños?"), "¿Y en niños?", [PREVIOUS], "es") is None

    capable = demo_settings.with_overrides(llm_capable=True)
    history = ({"role": "user", "content": PREVIOUS},)
    pipeline = QueryPipeline(capable, DocumentIndex.from_settings(capable), embedder,
                             ScriptedGenerator("¿Cuál es la dosis máxima diaria de paracetamol en niños?"))
    found = pipeline.search("¿Y en niños?", QueryOptions(history=history))
    assert found.trace.details["follow_up"]["by"] == "model" and found.question.endswith("en niños?")
    pipeline = QueryPipeline(capable, DocumentIndex.from_settings(capable), embedder,
                             ScriptedGenerator("No sé."))
    found = pipeline.search("¿Y en niños?", QueryOptions(history=history))
    assert found.trace.details["follow_up"]["by"] == "rules" and "paracetamol" in found.question
