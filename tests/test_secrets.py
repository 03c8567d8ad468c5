"""No secret setting (API keys, PDF passwords) is ever written out: not by ingest, eval or the server, not in
reports, index files, responses, traces or logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from rag.settings import SECRET_FIELDS, Settings
from tests.conftest import ScriptedGenerator

DATA = Path(__file__).parent.parent / "data"
SECRETS = {
    "RAG_API_KEY": "s3cret-api-7f1c",
    "RAG_LLM_API_KEY": "s3cret-llm-92ab",
    "RAG_PDF_PASSWORDS": '["s3cret-pdf-44d1"]',
    "RAG_PDF_PASSWORD_MAP": '{"prospecto_paracetamol.pdf": "s3cret-pdf-b7e0"}',
}
VALUES = ["s3cret-api-7f1c", "s3cret-llm-92ab", "s3cret-pdf-44d1", "s3cret-pdf-b7e0"]


def _leaks(text: str) -> list[str]:
    return [v for v in VALUES if v in text]


def _files_text(folder: Path) -> str:
    """Every file under ``folder``, as text where it is text, byte-searched otherwise."""
    parts = []
    for path in folder.rglob("*"):
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def test_secret_settings_are_secret_strings_and_left_out_of_dumps(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert all(f in SECRET_FIELDS for f in ("api_key", "llm_api_key", "pdf_passwords", "pdf_password_map"))
    assert isinstance(settings.api_key, SecretStr) and settings.secret("api_key") == "s3cret-api-7f1c"
    assert settings.pdf_password_map["prospecto_paracetamol.pdf"].get_secret_value() == "s3cret-pdf-b7e0"
    dumped = json.dumps(settings.public_dump())
    assert not _leaks(dumped) and not set(SECRET_FIELDS) & set(settings.public_dump())
    assert not _leaks(repr(settings)) and not _leaks(str(settings))
    assert not _leaks(settings.model_dump_json())  # pydantic masks them even in a full dump
    assert settings.with_overrides(top_k=3).secret("api_key") == "s3cret-api-7f1c"  # kept through copies


def test_ingest_eval_and_server_never_write_a_secret(tmp_path, monkeypatch, embedder, caplog):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | SECRETS
    env["RAG_INDEX_DIR"] = str(tmp_path / "index")
    rag = [sys.executable, "-m", "rag.cli"]
    ingest = subprocess.run([*rag, "ingest", str(DATA), "--index", str(tmp_path / "index")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert ingest.returncode == 0, ingest.stderr
    evaluation = subprocess.run([*rag, "eval", str(DATA / "qa.jsonl"), "--docs", str(DATA), "--limit", "2",
                                 "--answer-mode", "extractive", "--index", str(tmp_path / "eval-index"),
                                 "--out", str(tmp_path / "report")], env=env, capture_output=True, text=True,
                                timeout=900)
    assert evaluation.returncode == 0, evaluation.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["settings"]["top_k"] and not set(SECRET_FIELDS) & set(report["settings"])
    for output in (ingest.stdout, ingest.stderr, evaluation.stdout, evaluation.stderr):
        assert not _leaks(output)
    assert not _leaks(_files_text(tmp_path / "report")), "a secret in the evaluation report"
    assert not _leaks(_files_text(tmp_path / "index")), "a secret in the index folder"

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = Settings(index_dir=tmp_path / "index")
    caplog.set_level(logging.DEBUG)
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    client = TestClient(create_app(settings, pipeline=pipeline), raise_server_exceptions=False)
    auth = {"authorization": "Bearer s3cret-api-7f1c"}
    bodies = [
        client.get("/health").text,
        client.get("/v1/models").text,  # 401 without the key: the message must not hint at it
        client.get("/v1/models", headers={"authorization": "Bearer wrong"}).text,
        client.get("/v1/models", headers=auth).text,
        client.get("/openapi.json", headers=auth).text,
        client.get("/v1/documents", headers=auth).text,
        client.post("/v1/query", headers=auth, json={"question": "¿Cuántos días se puede teletrabajar?"}).text,
        client.post("/v1/query", headers=auth, json={"question": ""}).text,
        client.post("/v1/chat/completions", headers=auth, json={"messages": [
            {"role": "user", "content": "What does error E7 mean?"}]}).text,
    ]
    for body in bodies:
        assert not _leaks(body), body[:200]
    assert not _leaks("\n".join(r.getMessage() for r in caplog.records))
