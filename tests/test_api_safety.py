"""Safe to leave running (issue 45), over HTTP: served files cannot run, cross-site writes and foreign Host
names are refused, every text and body is bounded, a request has a time limit and fair turns on the models,
jobs belong to their collection, refused uploads leave nothing behind, security headers on every response.
The browser's side of it is tests/test_browser_safety.py; the load measurement is `python -m bench.abuse`."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import SLICE
from ingest.pipeline import FolderIngestor
from rag.index import DocumentIndex
from rag.pipeline import QueryOptions, QueryPipeline
from rag.settings import Settings
from tests.conftest import DATA, WAIT_LIMIT_S, ScriptedGenerator, WordHashEmbedder, policy_pipeline, serve, wait_for

KEY = {"authorization": "Bearer k3y"}
PAGE = b"<!doctype html><title>menu</title><p>Lunch menu</p><script>document.title = 'pwned'</script>"
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


@pytest.fixture
def app_parts(tmp_path, embedder):
    return policy_pipeline(tmp_path / "index", embedder, background_ingest_mb=0.02)


@pytest.fixture
def client(app_parts):
    """No key configured: rag serve's default, where nothing but these checks stands between a page and the API."""
    settings, pipeline = app_parts
    return TestClient(create_app(settings, pipeline=pipeline))


def _upload(client, name: str, data: bytes, headers: dict | None = None, collection: str | None = None):
    params = {"collection": collection} if collection else None
    return client.post("/v1/ingest/file", headers=headers or {}, params=params,
                       files={"file": (name, data, "application/octet-stream")})


# --- served files cannot run ------------------------------------------------------------------------
def test_served_html_downloads_sandboxed_and_a_pdf_opens_inline(client, app_parts):
    settings, _ = app_parts
    uploaded = _upload(client, "menu.html", PAGE)
    assert uploaded.status_code == 200, uploaded.text
    doc_id = uploaded.json()["documents"][0]["id"]
    served = client.get(f"/v1/documents/{doc_id}/file")
    assert served.status_code == 200 and served.content == PAGE
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]

    pdf = _upload(client, "manual.pdf", (DATA / "thermolink_t200_manual.pdf").read_bytes())
    pdf_id = (pdf.json()["documents"][0] if pdf.status_code == 200 else
              wait_for(lambda: client.get(pdf.json()["status_url"]).json()["state"] == "done"
                       and next(d for d in client.get("/v1/documents").json()["data"] if d["source"] == "manual.pdf"),
                       "the PDF's ingestion job"))["id"]
    inline = client.get(f"/v1/documents/{pdf_id}/file")
    assert inline.headers["content-type"] == "application/pdf"
    assert inline.headers["content-disposition"].startswith("inline")  # the page opens it at the cited page
    assert inline.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in inline.headers["content-security-policy"]


# --- cross-site requests and foreign Host names --------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
    {"origin": "http://evil.example"},  # an older browser: Origin alone
    {"sec-fetch-site": "cross-site"},
    {"origin": "http://127.0.0.1:9999", "sec-fetch-site": "same-site"},  # another port on this machine
    {"origin": "null"},  # a sandboxed frame or a file:// page
])
def test_cross_site_writes_are_refused_without_and_with_keys(client, app_parts, headers):
    settings, pipeline = app_parts
    refused = _upload(client, "menu.txt", b"Lunch at noon.", headers)
    assert refused.status_code == 403 and "cross-site request refused" in refused.json()["detail"]
    assert not settings.uploads.exists() or not any(settings.uploads.iterdir())  # nothing stored
    assert client.post("/v1/collections", headers=headers, json={"name": "evil"}).status_code == 403
    doc_id = client.get("/v1/documents").json()["data"][0]["id"]
    assert client.delete(f"/v1/documents/{doc_id}", headers=headers).status_code == 403
    assert len(client.get("/v1/documents").json()["data"]) == 1

    keyed = TestClient(create_app(settings.with_overrides(api_key="k3y"), pipeline=pipeline))
    assert _upload(keyed, "menu.txt", b"Lunch at noon.", {**KEY, **headers}).status_code == 403


def test_same_origin_pages_clients_without_a_browser_and_listed_origins_may_write(client, app_parts):
    settings, pipeline = app_parts
    # TestClient's requests go to http://testserver: the page at / of that origin.
    same = _upload(client, "a.txt", b"Lunch at noon.", {"origin": "http://testserver", "sec-fetch-site": "same-origin"})
    assert same.status_code == 200, same.text
    assert _upload(client, "b.txt", b"Dinner at eight.").status_code == 200  # curl, the openai client
    listed = TestClient(create_app(settings.with_overrides(cors_origins=["https://intranet.example"]),
                                   pipeline=pipeline))
    assert _upload(listed, "c.txt", b"Tea at five.", {"origin": "https://intranet.example",
                                                     "sec-fetch-site": "cross-site"}).status_code == 200


@pytest.mark.parametrize(("host", "status"), [
    ("attacker.example:8791", 400), ("attacker.example", 400), ("localhost.attacker.example", 400),
    ("localhost:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200), ("LOCALHOST", 200),
])
def test_the_host_header_must_name_this_server(client, host, status):
    response = client.get("/v1/collections", headers={"host": host})
    assert response.status_code == status, response.text
    if status == 400:
        assert "RAG_ALLOWED_HOSTS" in response.json()["detail"] and "data" not in response.json()
        assert response.headers["x-frame-options"] == "DENY"


def test_allowed_hosts_add_names(app_parts):
    settings, pipeline = app_parts
    client = TestClient(create_app(settings.with_overrides(allowed_hosts=["rag.intranet"]), pipeline=pipeline))
    assert client.get("/v1/collections", headers={"host": "rag.intranet:8000"}).status_code == 200
    assert client.get("/v1/collections", headers={"host": "other.intranet"}).status_code == 400


# --- bounded work per request ----------------------------------------------------------------------------
def _fields(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def test_every_text_a_client_sends_has_the_same_limit(client):
    long = "¿" + "a" * 4000
    assert _fields(client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": long}]})) \
        == ["messages.0.content"]
    system = client.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": long},
                                                                    {"role": "user", "content": "hola"}]})
    assert _fields(system) == ["messages.0.content"]
    assert "RAG_MAX_TEXT_CHARS" in system.json()["errors"][0]["message"]
    history = client.post("/v1/query", json={"question": "¿Y en niños?", "history": ["hola", long]})
    assert _fields(history) == ["history.1"]
    assert _fields(client.post("/v1/query", json={"question": long})) == ["question"]
    assert _fields(client.post("/v1/chunks", json={"text": long})) == ["text"]
    assert _fields(client.post("/v1/embeddings", json={"input": ["hola", long]})) == ["input.1"]
    assert _fields(client.post("/v1/embeddings", json={"input": long})) == ["input"]


def test_counts_of_messages_and_inputs_are_capped(client):
    messages = [{"role": "user", "content": "hola"}] * 33
    too_many = client.post("/v1/chat/completions", json={"messages": messages})
    assert _fields(too_many) == ["messages"] and "RAG_MAX_MESSAGES" in too_many.text
    inputs = client.post("/v1/embeddings", json={"input": ["hola"] * 257})
    assert _fields(inputs) == ["input"] and "RAG_MAX_EMBEDDING_INPUTS" in inputs.text
    assert _fields(client.post("/v1/query", json={"question": "hola", "history": ["x"] * 21})) == ["history"]
    # At the limits, answered.
    assert client.post("/v1/chat/completions", json={"messages": messages[:32]}).status_code == 200
    assert len(client.post("/v1/embeddings", json={"input": ["hola"] * 256}).json()["data"]) == 256


def test_the_limits_are_settings(app_parts):
    settings, pipeline = app_parts
    raised = TestClient(create_app(settings.with_overrides(max_text_chars=6000, max_messages=40), pipeline=pipeline))
    question = "¿Cuántos días por semana se puede teletrabajar? " + "x " * 2500
    assert raised.post("/v1/query", json={"question": question}).status_code == 200
    assert raised.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hola"}] * 40}
                       ).status_code == 200


def test_bodies_over_the_limit_are_a_413_declared_or_streamed(app_parts):
    settings, pipeline = app_parts
    client = TestClient(create_app(settings.with_overrides(max_body_mb=0.1), pipeline=pipeline))
    declared = client.post("/v1/chunks", content=b'{"text": "' + b"a" * 200_000 + b'"}',
                           headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "RAG_MAX_BODY_MB" in declared.json()["detail"]

    def chunked():  # no Content-Length: the bytes are counted as they arrive
        yield b'{"text": "'
        for _ in range(50):
            yield b"a" * 10_000
        yield b'"}'

    streamed = client.post("/v1/chunks", content=chunked(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "RAG_MAX_BODY_MB" in streamed.json()["detail"]
    assert client.post("/v1/chunks", json={"text": "teletrabajo"}).status_code == 200


class HeldGenerator(ScriptedGenerator):
    """Holds its first piece until released: a step that runs past the request's time limit."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()
        self.pieces = 0

    def stream(self, messages, params):
        self.started.set()
        self.release.wait(timeout=WAIT_LIMIT_S)
        for piece in ["Hasta ", "tres ", "días ", "[1]."] * 50:
            self.pieces += 1
            yield piece


def test_a_request_past_its_time_limit_is_a_504_and_ready_reports_it_until_it_stops(app_parts):
    settings, pipeline = app_parts
    generator = HeldGenerator()
    held = QueryPipeline(settings, pipeline.index, pipeline.embedder, generator)
    # The models a question loads on first use (dense embedder, answerability) are loaded before the clock
    # starts: the search must end well inside the time limit so that generation is what runs past it.
    held.answer("¿Cuántos días se teletrabaja?", QueryOptions(answer_mode="extractive"))
    # The limit is generous for a search (0.1 s here when idle) so that a busy CI machine still reaches generation.
    app = create_app(settings.with_overrides(request_timeout_s=10.0), pipeline=held)
    app.state.workers.grace_s = 0.5
    with serve(app) as base, ThreadPoolExecutor(1) as pool:
        wait_for(lambda: httpx.get(f"{base}/ready").status_code == 200, "the server's warm-up to end")
        started = time.monotonic()
        asked = pool.submit(httpx.post, f"{base}/v1/query", timeout=WAIT_LIMIT_S,
                            json={"question": "¿Cuántos días se teletrabaja?", "answer_mode": "generative"})
        assert generator.started.wait(timeout=10.0), "the search took the whole time limit"
        response = asked.result()
        assert response.status_code == 504 and "RAG_REQUEST_TIMEOUT_S" in response.json()["detail"]
        assert time.monotonic() - started < 60  # answered at the limit, not when the generator ends
        stuck = wait_for(lambda: (r := httpx.get(f"{base}/ready")).status_code == 503 and r, "/ready to say 503")
        assert "stuck" in stuck.json()["detail"] and "/v1/query" in stuck.json()["detail"]
        generator.release.set()
        # The worker stops at its next step: the model is given back after one piece, not two hundred.
        wait_for(lambda: httpx.get(f"{base}/ready").status_code == 200, "/ready to recover")
        assert generator.pieces <= 2 and app.state.services.gate.in_use == 0
        assert not app.state.services.gate.model.locked()


class SlowEmbedder(WordHashEmbedder):
    """One call at a time, 10 ms a text: a model that a request of many texts could hold for everyone."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.largest = 0  # the most texts of one call so far

    def embed(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            self.largest = max(self.largest, len(texts))
            time.sleep(0.01 * len(texts))
            return super().embed(texts)


def test_the_largest_embeddings_request_does_not_hold_the_embedder_for_others(tmp_path):
    embedder = SlowEmbedder()
    settings = Settings(index_dir=tmp_path / "index", dense_model="embedder", rerank=False)
    FolderIngestor(settings, embedder=WordHashEmbedder()).run(DATA / "politica_teletrabajo.md")
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    with serve(create_app(settings, pipeline=pipeline)) as base, ThreadPoolExecutor(1) as pool:
        wait_for(lambda: httpx.get(f"{base}/ready").status_code == 200, "the server to be ready")
        big = pool.submit(httpx.post, f"{base}/v1/embeddings", timeout=WAIT_LIMIT_S,
                          json={"input": [f"texto número {i}" for i in range(256)]})  # 2.6 s of embedding
        wait_for(lambda: embedder.largest > 1, "the large request to start embedding", interval_s=0.005)
        small = httpx.post(f"{base}/v1/embeddings", json={"input": "hola"}, timeout=WAIT_LIMIT_S)
        assert small.status_code == 200 and not big.done()  # answered between the large request's turns
        assert big.result().status_code == 200 and len(big.result().json()["data"]) == 256
    assert embedder.largest <= SLICE  # no call held the model for more than one turn's texts


# --- scopes on jobs; nothing left behind ----------------------------------------------------------------
def test_a_job_is_seen_only_by_keys_of_its_collection(app_parts):
    settings, pipeline = app_parts
    app = create_app(settings.with_overrides(api_key="k3y"), pipeline=pipeline)
    client = TestClient(app)
    for name in ("alpha", "beta"):
        assert client.post("/v1/collections", headers=KEY, json={"name": name}).status_code == 201
    keys = app.state.services.keys
    auth = {name: {"authorization": f"Bearer {keys.add(name, scope, collection)}"}
            for name, scope, collection in [("alpha-writer", "write", "alpha"), ("beta-writer", "write", "beta"),
                                            ("alpha-reader", "read", "alpha")]}
    data = (DATA / "clinic_visitor_faq.docx").read_bytes()  # over background_ingest_mb: a job
    job = _upload(client, "faq.docx", data, auth["alpha-writer"], collection="alpha")
    assert job.status_code == 202 and job.json()["job"]["collection"] == "alpha"
    url = job.json()["status_url"]
    assert client.get(url, headers=auth["alpha-writer"]).json()["collection"] == "alpha"
    assert client.get(url, headers=auth["beta-writer"]).status_code == 404  # not there for another collection
    assert client.get(url, headers=auth["alpha-reader"]).status_code == 403
    assert client.get(url, headers=KEY).status_code == 200
    wait_for(lambda: client.get(url, headers=KEY).json()["state"] in ("done", "failed"), "the job to finish")


def test_a_failed_background_upload_leaves_nothing_behind(client, app_parts):
    settings, _ = app_parts
    broken = b"%PDF-1.7\n" + np.random.default_rng(45).bytes(60_000)  # over background_ingest_mb: a job
    job = _upload(client, "broken.pdf", broken)
    assert job.status_code == 202, job.text
    state = wait_for(lambda: (j := client.get(job.json()["status_url"]).json())["state"] in ("done", "failed") and j,
                     "the job to finish")
    assert state["state"] == "failed"
    assert not (settings.uploads / "broken.pdf").exists()
    assert [d["source"] for d in client.get("/v1/documents").json()["data"]] == ["politica_teletrabajo.md"]


# --- security headers ---------------------------------------------------------------------------------------
def test_security_headers_on_every_response(app_parts):
    settings, pipeline = app_parts
    client = TestClient(create_app(settings.with_overrides(api_key="k3y"), pipeline=pipeline))
    for method, path, status in [("GET", "/", 200), ("GET", "/ui/app.js", 200), ("GET", "/health", 200),
                                 ("GET", "/v1/documents", 401), ("GET", "/nowhere", 404),
                                 ("POST", "/v1/query", 401)]:
        response = client.request(method, path)
        assert response.status_code == status, path
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
        assert response.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'", path


def test_the_page_has_no_inline_script_or_style():
    """What makes it work under ``default-src 'self'`` (the browser tests run it under that policy)."""
    page = (DATA.parent / "api" / "ui" / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "style=" not in page and "<style" not in page and "data:" not in page
    script = (DATA.parent / "api" / "ui" / "app.js").read_text(encoding="utf-8")
    assert "eval(" not in script and "new Function" not in script and ".style." not in script


def test_sigterm_stops_a_busy_server_within_seconds(tmp_path, demo_settings):
    """`rag serve` busy with the largest embeddings requests it accepts (about half a minute of work together):
    SIGTERM ends it in seconds, not when the work is done."""
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import free_port

    index = tmp_path / "index"
    shutil.copytree(demo_settings.index_dir, index)
    port = free_port()
    rag = shutil.which("rag") or os.path.join(os.path.dirname(sys.executable), "rag")
    server = subprocess.Popen([rag, "serve", "--index", str(index), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    body = {"input": [f"{i} " + "palabra " * 499 for i in range(256)]}  # 256 inputs of 4,000 characters
    try:
        wait_for(lambda: httpx.get(f"{base}/ready", timeout=1).status_code == 200, "rag serve to be ready")
        with ThreadPoolExecutor(4) as pool:
            busy = [pool.submit(httpx.post, f"{base}/v1/embeddings", json=body, timeout=WAIT_LIMIT_S) for _ in range(4)]
            time.sleep(3)
            assert not all(f.done() for f in busy), "the work ended before the signal; the test needs more of it"
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=WAIT_LIMIT_S)
            stopped_in = time.monotonic() - started
            for f in busy:
                f.exception()  # cut off or answered: either way done
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert stopped_in < 30, f"SIGTERM took {stopped_in:.0f} s (200 s before issue 45)"


def test_a_conversation_longer_than_the_models_context_is_a_422_not_a_500(client):
    """llama.cpp fails a prompt over its context window: the route says which field to shorten instead."""
    messages = [{"role": "user", "content": "palabra " * 450}] * 10 + [{"role": "user", "content": "¿Cuántos días?"}]
    for body in ({"messages": messages, "answer_mode": "generative"}, {"messages": messages, "use_context": False}):
        response = client.post("/v1/chat/completions", json=body)
        assert _fields(response) == ["messages"] and "RAG_LLM_CONTEXT" in response.text
    history = client.post("/v1/query", json={"question": "¿Y en niños?", "answer_mode": "generative",
                                             "history": ["palabra " * 450] * 10})
    assert _fields(history) == ["history"]
