"""Ingest into a Chroma server (``chroma run`` on loopback) instead of the embedded store."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ingest.pipeline import FolderIngestor
from rag.index import DocumentIndex
from rag.retriever import HybridRetriever
from rag.settings import Settings
from tests.conftest import DATA


@pytest.fixture
def chroma_url(tmp_path):
    executable = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    server = subprocess.Popen([executable, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("chroma server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_ingest_and_retrieve_through_a_chroma_server(tmp_path, chroma_url, embedder):
    settings = Settings(index_dir=tmp_path / "index", chroma_url=chroma_url)
    report = FolderIngestor(settings, embedder=embedder).run(DATA)
    assert len(report.ingested) == 4 and not report.failed
    assert not (tmp_path / "index" / "chroma").exists()  # nothing went to the embedded store
    index = DocumentIndex.from_settings(settings)
    assert index.store.count() == report.chunks
    hits = HybridRetriever(index, embedder).retrieve("What does error E7 mean?", "en", top_k=3).hits
    assert hits[0].chunk.metadata.source == "thermolink_t200_manual.pdf"
    again = FolderIngestor(settings, embedder=embedder).run(DATA)
    assert again.ingested == [] and index.store.count() == report.chunks
