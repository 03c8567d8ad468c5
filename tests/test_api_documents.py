"""Document routes, auth, uploads and model admission, with TestClient over a private index."""

import io
import re
import zipfile

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.pipeline import QueryPipeline
from tests.conftest import DATA, ScriptedGenerator, policy_pipeline, wait_for

KEY = {"authorization": "Bearer k3y"}


class SlowToLoadGenerator(ScriptedGenerator):
    loaded = False


@pytest.fixture
def app_parts(tmp_path, embedder):
    return policy_pipeline(tmp_path / "index", embedder, api_key="k3y", max_upload_mb=0.5, background_ingest_mb=0.02)


@pytest.fixture
def client(app_parts):
    settings, pipeline = app_parts
    return TestClient(create_app(settings, pipeline=pipeline))


def test_api_key_required_everywhere_but_health(client):
    # Every route of the OpenAPI document, and the documentation routes themselves (not in it).
    schema = client.get("/openapi.json", headers=KEY).json()
    routes = [(m.upper(), re.sub(r"\{[^}]+\}", "x", path)) for path, item in schema["paths"].items() for m in item]
    routes += [("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json")]
    # 17 documented (health, the 3 collection routes and the document file among them) + the 3 documentation
    # routes (api/routes)
    assert len(routes) == 20
    wrong = {"authorization": "Bearer nope"}
    for method, path in routes:
        if path == "/health":
            assert client.request(method, path).status_code == 200
            continue
        assert client.request(method, path).status_code == 401, (method, path)
        assert client.request(method, path, headers=wrong).status_code == 401, (method, path)
        assert client.request(method, path, headers=KEY).status_code not in (401, 403), (method, path)
    # The hand-over routes take their own credential, never the API key.
    for method, path in [("POST", "/v1/handover/ingest"), ("GET", "/v1/handover/jobs/x"),
                         ("POST", "/v1/handover/query"), ("POST", "/v1/handover/export")]:
        assert client.request(method, path, headers=KEY).status_code in (401, 403), path
    assert client.get("/v1/documents", headers={"x-api-key": "k3y"}).status_code == 200
    assert client.get("/ready", headers=KEY).json()["status"] == "ready"
    assert "swagger-ui" in client.get("/docs", headers=KEY).text


def test_a_setting_opens_the_docs_alone(app_parts):
    settings, pipeline = app_parts
    client = TestClient(create_app(settings.with_overrides(open_docs=True), pipeline=pipeline))
    assert client.get("/openapi.json").status_code == 200 and client.get("/docs").status_code == 200
    assert client.get("/v1/documents").status_code == 401


def test_text_ingest_list_get_delete(client, app_parts):
    _, pipeline = app_parts
    created = client.post("/v1/ingest/text", headers=KEY,
                          json={"file_name": "../../horario", "text": "La farmacia abre los sábados de 10:00 a 14:00."})
    assert created.status_code == 200, created.text
    doc = created.json()["documents"][0]
    assert doc["source"] == "horario.txt" and doc["chunks"] >= 1
    listed = {d["source"]: d["id"] for d in client.get("/v1/documents", headers=KEY).json()["data"]}
    assert set(listed) == {"politica_teletrabajo.md", "horario.txt"}
    assert client.get(f"/v1/documents/{doc['id']}", headers=KEY).json()["source"] == "horario.txt"
    hits = client.post("/v1/chunks", headers=KEY, json={"text": "sábados farmacia", "limit": 3}).json()["data"]
    assert hits[0]["source"] == "horario.txt"

    assert client.delete(f"/v1/documents/{doc['id']}", headers=KEY).status_code == 200
    index = pipeline.index
    assert not any(cid.startswith(doc["id"]) for cid in index.store.ids())
    assert not any(cid.startswith(doc["id"]) for cid in index.bm25.ids())
    assert client.get(f"/v1/documents/{doc['id']}", headers=KEY).status_code == 404
    assert client.delete(f"/v1/documents/{doc['id']}", headers=KEY).status_code == 404


def test_file_upload_and_background_job(client, app_parts):
    settings, _ = app_parts
    data = (DATA / "clinic_visitor_faq.docx").read_bytes()  # larger than background_ingest_mb: a job
    response = client.post("/v1/ingest/file", headers=KEY,
                           files={"file": ("clinic_visitor_faq.docx", data, "application/octet-stream")})
    assert response.status_code == 202
    job_url = response.json()["status_url"]
    job = wait_for(lambda: (j := client.get(job_url, headers=KEY).json())["state"] in ("done", "failed") and j,
                   "the ingestion job to finish")
    assert job["state"] == "done", job
    assert job["files_done"] == job["files_total"] == 1 and job["pages_done"] == job["pages_total"]
    assert job["progress"] == {"done": 1, "total": 1, "current": None}
    assert (settings.uploads / "clinic_visitor_faq.docx").exists()
    assert "clinic_visitor_faq.docx" in [d["source"] for d in client.get("/v1/documents", headers=KEY).json()["data"]]
    assert client.get("/v1/ingest/jobs/nope", headers=KEY).status_code == 404


def test_a_folder_job_reports_files_and_pages_done(app_parts, tmp_path):
    import shutil

    settings, pipeline = app_parts
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("prospecto_paracetamol.pdf", "thermolink_t200_manual.pdf", "clinic_visitor_faq.docx"):
        shutil.copy(DATA / name, docs)  # 2 + 2 pages counted ahead; the Word file's once read
    # A folder job is handed over by `rag ingest` from this machine; its status is the public job route's too.
    client = TestClient(create_app(settings, pipeline=pipeline, handover_token="t0ken"), client=("127.0.0.1", 5000))
    accepted = client.post("/v1/handover/ingest", json={"path": str(docs)}, headers={"X-Handover-Token": "t0ken"})
    assert accepted.status_code == 202, accepted.text
    url = f"/v1/ingest/jobs/{accepted.json()['job']['id']}"
    seen: list[dict] = []

    def finished() -> dict | None:
        seen.append(client.get(url, headers=KEY).json())
        return seen[-1] if seen[-1]["state"] in ("done", "failed") else None

    job = wait_for(finished, "the folder job to finish", interval_s=0.05)
    assert job["state"] == "done", job
    assert job["files_done"] == job["files_total"] == 3 and job["pages_done"] == job["pages_total"] >= 4
    assert job["eta_seconds"] == 0 and job["progress"] == {"done": 3, "total": 3, "current": None}
    assert job["result"]["pages"] >= 4 and len(job["result"]["ingested"]) == 3
    # Whatever moment a poll saw, its numbers agree with each other and never go back.
    for snapshot in seen:
        assert 0 <= snapshot["files_done"] <= snapshot["files_total"] <= 3, snapshot
        assert 0 <= snapshot["pages_done"] <= snapshot["pages_total"], snapshot
        assert snapshot["eta_seconds"] is None or snapshot["eta_seconds"] >= 0, snapshot
        if snapshot["state"] == "running" and snapshot["files_total"]:
            assert snapshot["pages_total"] >= 4, snapshot  # the PDFs' pages, counted before reading them
    for earlier, later in zip(seen, seen[1:]):
        assert later["files_done"] >= earlier["files_done"] and later["pages_done"] >= earlier["pages_done"]


def _docx_named_pptx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "content", "status", "words"), [
    ("notes.pdf", b"hello, I am text", 415, "not a PDF"),
    ("slides.pptx", _docx_named_pptx(), 415, "another kind"),
    ("script.sh", b"echo hi", 415, "unsupported file type"),
    ("big.txt", b"a" * 600_000, 413, "upload limit"),
    ("empty.txt", b"", 400, "empty"),
    ("..", b"x", 400, "invalid"),
])
def test_bad_uploads_are_refused_with_a_reason(client, name, content, status, words):
    response = client.post("/v1/ingest/file", headers=KEY, files={"file": (name, content, "application/octet-stream")})
    assert response.status_code == status and words in response.json()["detail"]


def test_encrypted_pdf_without_password_is_a_422(client, shared):
    pdf = (shared / "corpus" / "pdf_hard" / "encrypted_aes128_r4_user-asdfzxcv.pdf").read_bytes()
    response = client.post("/v1/ingest/file", headers=KEY, files={"file": ("locked.pdf", pdf, "application/pdf")})
    assert response.status_code == 422 and "password required" in response.json()["detail"]


def test_model_not_loaded_is_a_503(app_parts):
    settings, pipeline = app_parts
    loading = QueryPipeline(settings, pipeline.index, pipeline.embedder, SlowToLoadGenerator())
    client = TestClient(create_app(settings, pipeline=loading))
    response = client.post("/v1/query", headers=KEY, json={"question": "hola"})
    assert response.status_code == 503 and response.headers["retry-after"]
    assert client.get("/ready", headers=KEY).status_code == 503


def test_busy_model_is_a_503_with_retry_after(client):
    gate = client.app.state.services.gate
    for _ in range(gate.capacity):
        gate.enter()
    try:
        response = client.post("/v1/query", headers=KEY, json={"question": "¿Cuántos días se teletrabaja?",
                                                               "answer_mode": "generative"})
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        for mode in ("extractive", None):  # quotes (the default with the embedded model) need no model: not gated
            quotes = client.post("/v1/query", headers=KEY, json={"question": "¿Cuántos días se teletrabaja?",
                                                                 "answer_mode": mode})
            assert quotes.status_code == 200
    finally:
        for _ in range(gate.capacity):
            gate.leave()
    assert client.post("/v1/query", headers=KEY, json={"question": "¿Cuántos días se teletrabaja?"}).status_code == 200


@pytest.mark.parametrize("body", [
    {"messages": []}, {"messages": [{"role": "user", "content": "  "}]},
    {"messages": [{"role": "robot", "content": "hi"}]}, {"model": "x"},
])
def test_bad_chat_bodies_are_422(client, body):
    assert client.post("/v1/chat/completions", headers=KEY, json=body).status_code == 422


def test_bad_embeddings_and_chunks_are_422(client):
    assert client.post("/v1/embeddings", headers=KEY, json={"input": []}).status_code == 422
    assert client.post("/v1/embeddings", headers=KEY, json={"input": 3}).status_code == 422
    assert client.post("/v1/chunks", headers=KEY, json={"text": "x", "limit": 0}).status_code == 422
    vectors = client.post("/v1/embeddings", headers=KEY, json={"input": ["hola", "adiós"]}).json()["data"]
    assert len(vectors) == 2 and len(vectors[0]["embedding"]) == 384


@pytest.mark.parametrize(("body", "source"), [
    ({"file_name": "notas", "text": "La farmacia cierra los domingos."}, "notas.txt"),
    ({"file_name": "guia.md", "text": "# Guía\n\nLa farmacia cierra los domingos."}, "guia.md"),
    ({"file_name": "informe.pdf", "text": "La farmacia cierra los domingos."}, "informe.pdf.txt"),  # text, not a PDF
    ({"file_name": "sub/dir/nota", "text": "La farmacia cierra los domingos."}, "nota.txt"),  # no paths
])
def test_text_ingest_names_the_document_safely(client, body, source):
    response = client.post("/v1/ingest/text", headers=KEY, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["documents"][0]["source"] == source
    hits = client.post("/v1/chunks", headers=KEY, json={"text": "farmacia domingos", "limit": 1}).json()["data"]
    assert hits[0]["source"] == source


@pytest.mark.parametrize(("body", "status", "field"), [
    ({}, 422, "file_name"),
    ({"text": "hola"}, 422, "file_name"),
    ({"file_name": "", "text": "hola"}, 422, "file_name"),
    ({"file_name": "n" * 201, "text": "hola"}, 422, "file_name"),
    ({"file_name": "nota"}, 422, "text"),
    ({"file_name": "nota", "text": ""}, 422, "text"),
    ({"file_name": "nota", "text": 5}, 422, "text"),
    ({"file_name": "nota", "text": "hola", "tags": ["x"]}, 422, "tags"),
    ({"file_name": "..", "text": "hola"}, 400, None),
    ({"file_name": "nota", "text": "a" * 600_000}, 413, None),
])
def test_bad_text_ingest_bodies_are_refused_naming_the_field(client, body, status, field):
    response = client.post("/v1/ingest/text", headers=KEY, json=body)
    assert response.status_code == status, response.text
    if field:
        assert field in [e["field"] for e in response.json()["errors"]]
    assert client.get("/v1/documents", headers=KEY).json()["data"][0]["source"] == "politica_teletrabajo.md"
    assert len(client.get("/v1/documents", headers=KEY).json()["data"]) == 1  # nothing was added


def test_whitespace_only_text_is_reported_not_indexed(client):
    response = client.post("/v1/ingest/text", headers=KEY, json={"file_name": "vacio", "text": "  \n\t "})
    assert 400 <= response.status_code < 500, response.text
    assert "empty" in response.text.lower()
    assert [d["source"] for d in client.get("/v1/documents", headers=KEY).json()["data"]] == ["politica_teletrabajo.md"]
