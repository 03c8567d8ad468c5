"""A real uvicorn server on loopback: openai client and streaming (real models), the bounded model queue,
an ingestion job while answering. The 8-client load measurement is `python -m bench.load`."""

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from openai import OpenAI

from api.app import create_app
from ingest.manifest import Manifest
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from tests.conftest import DATA, WAIT_LIMIT_S, ScriptedGenerator, serve, wait_for


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
    # The local model, then the collections (a chat naming one searches it).
    assert [m.id for m in client.models.list().data] == ["SmolLM2-135M-Instruct.Q4_1.gguf", "default"]
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
    base, _, app = live
    # The pipeline came warmed: the server's own warm-up at start must not make it "loading" again.
    assert app.state.services.pipeline.ready and httpx.get(f"{base}/ready", headers={"authorization": "Bearer k3y"}).status_code == 200
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
    assert set(final) == {"answer", "abstained", "citations", "trace", "short_answer", "short_start", "short_end",
                          "short_citation"} and final["citations"]


class HeldGenerator(ScriptedGenerator):
    """Holds every completion until the test releases it, so that the gate's queue can be filled for sure."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply
        self.release = threading.Event()

    def stream(self, messages, params):
        self.calls.append(messages)
        self.release.wait(timeout=WAIT_LIMIT_S)
        yield self.reply


def test_the_model_queue_is_bounded_and_what_fits_is_served(tmp_path, demo_settings, embedder):
    """Beyond capacity: 503 with Retry-After at once; within capacity: served. Proven both ways on a real server."""
    settings = demo_settings.with_overrides(max_waiting_requests=2)
    generator = HeldGenerator("Error E7 means the C wire is not connected [1].")
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, generator)
    app = create_app(settings, pipeline=pipeline)
    gate = app.state.services.gate
    body = {"question": "What does error E7 mean on the thermostat?", "answer_mode": "generative"}
    with serve(app) as base, ThreadPoolExecutor(gate.capacity) as pool:
        # the warm-up (models, BM25 matrix) runs at start and /ready says 503 until it ends
        wait_for(lambda: httpx.get(f"{base}/ready").status_code == 200, "the server to be ready")
        admitted = [pool.submit(httpx.post, f"{base}/v1/query", json=body, timeout=WAIT_LIMIT_S)
                    for _ in range(gate.capacity)]
        wait_for(lambda: gate.in_use == gate.capacity, f"{gate.capacity} requests to hold the model gate")
        started = time.perf_counter()
        try:
            refused = httpx.post(f"{base}/v1/query", json=body, timeout=WAIT_LIMIT_S)
        except httpx.ReadTimeout:
            pytest.fail("a request beyond the gate's capacity was queued instead of refused with 503")
        refused_after = time.perf_counter() - started
        assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
        assert "busy" in refused.json()["detail"]
        extractive = httpx.post(f"{base}/v1/query", json={**body, "answer_mode": "extractive"}, timeout=WAIT_LIMIT_S)
        assert extractive.status_code == 200 and "C wire" in extractive.json()["answer"]  # needs no model
        generator.release.set()
        replies = [f.result() for f in admitted]
        assert [r.status_code for r in replies] == [200] * gate.capacity
        assert all(r.json()["citations"][0]["source"] == "thermolink_t200_manual.pdf" for r in replies)
        assert gate.in_use == 0 and len(generator.calls) == gate.capacity
        again = httpx.post(f"{base}/v1/query", json=body, timeout=WAIT_LIMIT_S)
        assert again.status_code == 200  # places are given back
    print(f"\nrefused in {refused_after * 1000:.0f} ms while {gate.capacity} requests held the model")


def test_ingestion_job_while_answering_keeps_both_indexes_consistent(live):
    base, settings, app = live
    headers = {"authorization": "Bearer k3y"}
    upload = (DATA / "thermolink_t200_manual.pdf").read_bytes().replace(b"ThermoLink", b"ThermoLinx")
    job = httpx.post(f"{base}/v1/ingest/file", headers=headers, timeout=60,
                     files={"file": ("manual_copy.pdf", upload, "application/pdf")})
    assert job.status_code == 202
    question = {"question": "What does error E7 mean on the thermostat?", "answer_mode": "extractive"}
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: httpx.post(f"{base}/v1/query", headers=headers, json=question,
                                                     timeout=WAIT_LIMIT_S), range(12)))
    assert [r.status_code for r in replies] == [200] * 12
    assert all("C wire" in r.json()["answer"] and r.json()["citations"] for r in replies)
    status_url = f"{base}{job.json()['status_url']}"
    state = wait_for(lambda: (s := httpx.get(status_url, headers=headers).json()["state"]) in ("done", "failed") and s,
                     "the ingestion job to finish")
    assert state == "done"
    index = app.state.services.pipeline.index
    manifest_ids = Manifest(settings.index_dir / "manifest.json").chunk_ids()
    assert set(index.store.ids()) == set(index.bm25.ids()) == manifest_ids
    assert "manual_copy.pdf" in [d["source"] for d in httpx.get(f"{base}/v1/documents", headers=headers).json()["data"]]
