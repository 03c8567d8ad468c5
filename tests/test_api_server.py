"""A real uvicorn server on loopback with the real models: openai client, streaming, bounded load."""

import json
import shutil
import time

import httpx
import pytest
from openai import OpenAI

from api.app import create_app
from bench.load import run_load
from ingest.manifest import Manifest
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from tests.conftest import DATA, serve


@pytest.fixture
def live(tmp_path, demo_settings, embedder, llm):
    """A server over a private copy of the demo index, real embedder and real GGUF."""
    index_dir = tmp_path / "index"
    shutil.copytree(demo_settings.index_dir, index_dir)
    settings = demo_settings.with_overrides(index_dir=index_dir, api_key="k3y", max_waiting_requests=4,
                                            background_ingest_mb=0.001)
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, llm)
    pipeline.warm_up()
    app = create_app(settings, pipeline=pipeline)
    with serve(app) as base:
        yield base, settings, app


def test_openai_client(live):
    base, _, _ = live
    client = OpenAI(base_url=f"{base}/v1", api_key="k3y")
    assert [m.id for m in client.models.list().data] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    reply = client.chat.completions.create(model="local", messages=[
        {"role": "system", "content": "Responde en una frase."},
        {"role": "user", "content": "¿Cuántos días por semana se puede teletrabajar?"}])
    choice = reply.choices[0]
    assert "tres días" in choice.message.content
    # Counted with the model's tokenizer; a quoted answer needs no prompt.
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert choice.model_extra["sources"][0]["source"] == "politica_teletrabajo.md"

    text, sources = "", None
    for chunk in client.chat.completions.create(model="local", stream=True, messages=[
            {"role": "user", "content": "What does error E7 mean on the thermostat?"}]):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.choices and (chunk.choices[0].model_extra or {}).get("sources"):
            sources = chunk.choices[0].model_extra["sources"]
    assert "C wire" in text and sources[0]["page"] == 2

    plain = client.chat.completions.create(model="local", max_tokens=8, messages=[{"role": "user", "content": "Hi"}],
                                           extra_body={"use_context": False})
    assert plain.choices[0].message.content and "sources" not in (plain.choices[0].model_extra or {})
    assert plain.usage.prompt_tokens > 0 and 0 < plain.usage.completion_tokens <= 8
    embedded = client.embeddings.create(model="local", input="hola")
    assert len(embedded.data[0].embedding) == 384 and embedded.usage.prompt_tokens > 0


def test_query_streams_server_sent_events(live):
    base, _, _ = live
    events = []
    with httpx.stream("POST", f"{base}/v1/query", headers={"authorization": "Bearer k3y"}, timeout=120,
                      json={"question": "What does error E7 mean on the thermostat?", "stream": True,
                            "answer_mode": "generative", "max_tokens": 24}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                events.append([line[7:], None])
            elif line.startswith("data: "):
                events[-1][1] = json.loads(line[6:])
    kinds = [kind for kind, _ in events]
    assert kinds.count("token") >= 2 and kinds[-1] == "answer"
    final = events[-1][1]
    assert set(final) == {"answer", "abstained", "citations", "trace"} and final["citations"]


def test_bounded_load_with_an_ingestion_job(live):
    base, settings, app = live
    headers = {"authorization": "Bearer k3y"}
    upload = (DATA / "thermolink_t200_manual.pdf").read_bytes().replace(b"ThermoLink", b"ThermoLinx")
    job = httpx.post(f"{base}/v1/ingest/file", headers=headers, timeout=60,
                     files={"file": ("manual_copy.pdf", upload, "application/pdf")})
    assert job.status_code == 202
    result = run_load(base, requests=50, concurrency=8, api_key="k3y", max_tokens=24)
    print("\nload:", result.summary())
    gate = app.state.services.gate
    # The first wave fills the gate (1 generating + 4 waiting) and is answered; the rest may be refused.
    assert set(result.statuses) <= {200, 503} and result.statuses[200] >= gate.capacity
    for status, body in result.bodies:
        if status == 200:
            assert body["abstained"] or body["citations"]
        else:
            assert "busy" in body["detail"]
    for _ in range(300):
        state = httpx.get(f"{base}{job.json()['status_url']}", headers=headers).json()["state"]
        if state in ("done", "failed"):
            break
        time.sleep(0.1)
    assert state == "done"
    index = app.state.services.pipeline.index
    manifest_ids = Manifest(settings.index_dir / "manifest.json").chunk_ids()
    assert set(index.store.ids()) == set(index.bm25.ids()) == manifest_ids
    assert "manual_copy.pdf" in [d["source"] for d in httpx.get(f"{base}/v1/documents", headers=headers).json()["data"]]
