"""Scoped keys against a real server: key × scope × collection × route → status, keys stored hashed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rag.keys import KeyStore, Principal
from tests.conftest import DATA, free_port, subprocess_server, wait_for

ENV_ADMIN = "env-admin-3c9d"


def _rag(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_principal_rules():
    legal_write = Principal("lw", "write", "legal")
    assert legal_write.allows("legal", "read") and legal_write.allows("legal", "write")
    assert not legal_write.allows("legal", "admin") and not legal_write.allows("clinic", "read")
    assert Principal("a", "admin", "*").allows("anything", "admin")
    message = legal_write.denial("clinic", "read")
    assert "clinic" in message and "read" in message and "write" in message


def test_keys_are_stored_hashed_and_shown_once(tmp_path: Path):
    store = KeyStore(tmp_path)
    key = store.add("legal-bot", "read", "legal")
    stored = (tmp_path / "keys.json").read_text()
    assert key not in stored and "legal-bot" in stored
    assert oct((tmp_path / "keys.json").stat().st_mode & 0o777) == "0o600"
    assert store.verify(key) == Principal("legal-bot", "read", "legal")
    assert store.verify(key + "x") is None and store.verify("") is None
    assert store.revoke("legal-bot") and store.verify(key) is None and not store.revoke("legal-bot")


def test_access_matrix_against_a_real_server(tmp_path: Path, capsys):
    index = tmp_path / "index"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    legal_docs = tmp_path / "legal"
    legal_docs.mkdir()
    (legal_docs / "alzada.md").write_text("El plazo del recurso de alzada es de un mes.", encoding="utf-8")
    made = _rag("ingest", str(DATA / "politica_teletrabajo.md"), "--index", str(index), "--quiet", env=env)
    assert made.returncode == 0, made.stderr
    for name in ("legal", "clinic"):
        folder = legal_docs if name == "legal" else DATA / "clinic_visitor_faq.docx"
        assert _rag("ingest", str(folder), "--index", str(index), "--collection", name, "--quiet",
                    env=env).returncode == 0
    keys = {}
    for name, collection, scope in (("legal-read", "legal", "read"), ("legal-write", "legal", "write"),
                                    ("clinic-read", "clinic", "read"), ("all-admin", "*", "admin")):
        made = _rag("keys", "add", name, "--collection", collection, "--scope", scope, "--index", str(index), env=env)
        assert made.returncode == 0, made.stderr
        keys[name] = made.stdout.strip().splitlines()[-1]  # the key is the last line
    listed = _rag("keys", "list", "--index", str(index), env=env).stdout
    assert "legal-write\twrite\tlegal" in listed and not any(k in listed for k in keys.values())
    assert not any(k in (index / "keys.json").read_text() for k in keys.values())

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_env = env | {"RAG_API_KEY": ENV_ADMIN}
    command = [sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port", str(port)]
    routes = {
        "query legal": ("POST", "/v1/query", {"json": {"question": "¿Plazo del recurso de alzada?",
                                                       "collection": "legal"}}),
        "query clinic": ("POST", "/v1/query", {"json": {"question": "visiting hours?", "collection": "clinic"}}),
        "query default": ("POST", "/v1/query", {"json": {"question": "¿Cuántos días de teletrabajo?"}}),
        "chunks legal": ("POST", "/v1/chunks", {"json": {"text": "alzada", "collection": "legal"}}),
        "documents legal": ("GET", "/v1/documents", {"params": {"collection": "legal"}}),
        "documents clinic": ("GET", "/v1/documents", {"params": {"collection": "clinic"}}),
        "ingest legal": ("POST", "/v1/ingest/text", {"json": {"file_name": "n", "text": "Nota.",
                                                              "collection": "legal"}}),
        "ingest clinic": ("POST", "/v1/ingest/text", {"json": {"file_name": "n", "text": "Nota.",
                                                               "collection": "clinic"}}),
        "chat legal": ("POST", "/v1/chat/completions", {"json": {"model": "legal", "messages": [
            {"role": "user", "content": "¿Plazo del recurso de alzada?"}]}}),
        "create collection": ("POST", "/v1/collections", {"json": {"name": "support"}}),
        "ready": ("GET", "/ready", {}),
    }
    expected = {  # None: no key, "wrong": a key that is no key
        None: dict.fromkeys(routes, 401), "wrong": dict.fromkeys(routes, 401),
        "legal-read": {"query legal": 200, "query clinic": 403, "query default": 403, "chunks legal": 200,
                       "documents legal": 200, "documents clinic": 403, "ingest legal": 403, "ingest clinic": 403,
                       "chat legal": 200, "create collection": 403, "ready": 200},
        "legal-write": {"query legal": 200, "query clinic": 403, "query default": 403, "chunks legal": 200,
                        "documents legal": 200, "documents clinic": 403, "ingest legal": 200, "ingest clinic": 403,
                        "chat legal": 200, "create collection": 403, "ready": 200},
        "clinic-read": {"query legal": 403, "query clinic": 200, "query default": 403, "chunks legal": 403,
                        "documents legal": 403, "documents clinic": 200, "ingest legal": 403, "ingest clinic": 403,
                        "chat legal": 403, "create collection": 403, "ready": 200},
        "all-admin": dict.fromkeys(routes, 200) | {"create collection": 201},
        "RAG_API_KEY": dict.fromkeys(routes, 200) | {"create collection": 200},  # made by all-admin just before
    }
    secrets_by_holder = keys | {"RAG_API_KEY": ENV_ADMIN, "wrong": "not-a-key"}
    matrix: dict[str, dict[str, int]] = {}
    with subprocess_server(command, f"{base}/health", env=server_env):
        with httpx.Client(base_url=base, timeout=120) as client:
            admin = {"authorization": f"Bearer {ENV_ADMIN}"}
            wait_for(lambda: client.get("/ready", headers=admin).status_code == 200, "the server to be ready")
            for holder in expected:
                headers = {"authorization": f"Bearer {secrets_by_holder[holder]}"} if holder else {}
                row = {}
                for route, (method, path, kwargs) in routes.items():
                    response = client.request(method, path, headers=headers, **kwargs)
                    row[route] = response.status_code
                    if response.status_code == 403:
                        assert "collection" in response.json()["detail"]
                        assert secrets_by_holder[holder] not in response.text  # names scopes, never the key
                matrix[str(holder)] = row
            models = client.get("/v1/models", headers={"authorization": f"Bearer {keys['legal-read']}"}).json()
            assert {m["id"] for m in models["data"] if m["owned_by"] == "collection"} == {"legal"}
            listed = client.get("/v1/collections", headers={"authorization": f"Bearer {keys['clinic-read']}"}).json()
            assert [c["name"] for c in listed["data"]] == ["clinic"]
    with capsys.disabled():  # the matrix, for the record
        print("\n" + json.dumps(matrix, indent=1))
    assert matrix == {str(k): v for k, v in expected.items()}

    # Revoked keys stop working at once (the store is read on every request).
    assert _rag("keys", "revoke", "legal-read", "--index", str(index), env=env).returncode == 0
    assert KeyStore(index).verify(keys["legal-read"]) is None


def test_no_keys_means_loopback_only_unless_told(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    refused = _rag("serve", "--index", str(tmp_path / "index"), "--host", "0.0.0.0", "--port", str(free_port()),
                   env=env)
    assert refused.returncode == 2 and "--allow-open" in refused.stderr and "rag keys add" in refused.stderr


@pytest.mark.parametrize("scope", ["owner", ""])
def test_bad_scope_is_refused_naming_it(tmp_path: Path, scope):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    made = _rag("keys", "add", "x", "--scope", scope, "--index", str(tmp_path), env=env)
    assert made.returncode != 0 and "scope" in made.stderr
