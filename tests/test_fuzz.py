"""The OpenAPI document is the contract: schemathesis sends generated requests to every route (a fixed seed,
a bounded number of examples each) and no answer may be a server error or break its declared schema."""

from __future__ import annotations

import time

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install '.[test]' brings schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from api.app import create_app  # noqa: E402
from ingest.pipeline import FolderIngestor  # noqa: E402
from rag.index import DocumentIndex  # noqa: E402
from rag.pipeline import QueryPipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from tests.conftest import DATA, ScriptedGenerator  # noqa: E402

EXAMPLES_PER_ROUTE = 25
KEY = {"authorization": "Bearer fuzz-k3y"}


def test_every_route_survives_generated_requests(tmp_path, embedder, capsys):
    app_settings = Settings(index_dir=tmp_path / "index", api_key="fuzz-k3y", max_upload_mb=1)
    FolderIngestor(app_settings, embedder=embedder).run(DATA / "politica_teletrabajo.md")
    pipeline = QueryPipeline(app_settings, DocumentIndex.from_settings(app_settings), embedder,
                             ScriptedGenerator(*["Hasta tres días por semana [1]."] * 10_000))
    app = create_app(app_settings, pipeline=pipeline)
    with TestClient(app) as client:  # runs the lifespan, which warms the models in the background
        # /ready answers 503 (Retry-After) until the warm-up is done: by design, so the fuzzing starts after it.
        deadline = time.monotonic() + 300
        while client.get("/ready", headers=KEY).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/ready", headers=KEY).status_code == 200
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=KEY)
        report: dict[str, dict[str, int]] = {}
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            counts = report.setdefault(label, {"examples": 0, "server_errors": 0})

            @settings(max_examples=EXAMPLES_PER_ROUTE, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case) -> None:
                response = case.call(headers=KEY)
                counts["examples"] += 1
                counts["server_errors"] += response.status_code >= 500
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance],
                                       headers=KEY)

            run()
    with capsys.disabled():
        print(f"\nschemathesis: {len(report)} routes, {sum(c['examples'] for c in report.values())} examples, "
              f"{sum(c['server_errors'] for c in report.values())} server errors")
        for label, counts in sorted(report.items()):
            print(f"  {label}: {counts['examples']} examples, {counts['server_errors']} server errors")
    assert len(report) >= 16 and all(c["examples"] > 0 for c in report.values())
    assert not any(c["server_errors"] for c in report.values())
