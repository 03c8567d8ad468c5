"""Every real part end to end with outbound connections blocked: ingest, ask (real GGUF), HTTP."""

import json
import socket

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from rag.cli import main
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from rag.settings import Settings
from tests.conftest import DATA, outbound_blocked, serve

QUESTION = "¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?"


def test_ingest_ask_and_http_query_offline(tmp_path, monkeypatch, capsys, embedder, llm):
    index_dir = tmp_path / "index"
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("RAG_LLM_CAPABLE", "true")  # auto generates with the GGUF (and falls back to quotes)
    with outbound_blocked() as attempts:
        # CLI ingest (unstructured's DOCX/MD partitioners included) and ask with the real GGUF.
        assert main(["ingest", str(DATA), "--quiet"]) == 0
        assert "4 ingested" in capsys.readouterr().out
        assert main(["ask", QUESTION, "--json"]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert set(payload) == {"answer", "abstained", "citations", "trace", "short_answer", "short_start", "short_end",
                                "short_citation"}
        assert payload["abstained"] is False
        assert "4 g al día" in payload["answer"]  # the leaflet's adult maximum, whatever the answer mode did
        assert ("prospecto_paracetamol.pdf", 2) in [(c["source"], c["page"]) for c in payload["citations"]]
        citation = payload["citations"][0]
        assert set(citation) == {"source", "page", "chunk_id", "score", "text", "quote_start", "quote_end",
                                 "ocr_engine", "ocr_confidence"}
        assert citation["ocr_engine"] is None  # the leaflet has a text layer
        assert payload["trace"]["generator"] == "SmolLM2-135M-Instruct.Q4_1.gguf"

        # HTTP, in-process and through a real server on loopback, with the real models.
        settings = Settings(index_dir=index_dir)
        pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, llm)
        pipeline.warm_up()
        app = create_app(settings, pipeline=pipeline)
        response = TestClient(app).post("/v1/query", json={"question": QUESTION})
        assert response.status_code == 200
        assert response.json()["citations"][0]["source"] == "prospecto_paracetamol.pdf"
        assert "4 g al día" in response.json()["answer"]

        with serve(app) as base:
            assert httpx.get(f"{base}/health").json() == {"status": "ok"}
            answer = httpx.post(f"{base}/v1/query", json={"question": "What does error E7 mean?"}, timeout=120)
            assert answer.status_code == 200
            assert answer.json()["citations"][0]["source"] == "thermolink_t200_manual.pdf"
            assert "C wire" in answer.json()["answer"] and not answer.json()["abstained"]
    assert attempts == [], f"outbound network attempts: {attempts}"


def test_guard_really_blocks():
    with outbound_blocked() as attempts:
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=1)
        except OSError:
            pass
    assert attempts
