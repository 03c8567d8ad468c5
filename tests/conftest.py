"""Fixtures: real models loaded once per session, a demo index, fakes for plumbing, a network guard."""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from rag.offline import ensure_offline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

ensure_offline()


def shared_dir() -> Path:
    """The third-party corpus folder, from the one setting (RAG_SHARED_DIR, default ../shared)."""
    path = Settings().shared_dir
    return path if path.is_absolute() else (ROOT / path).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "corpus").is_dir():
        pytest.skip(f"shared corpus not found at {path} (set RAG_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def embedder():
    from rag.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def llm():
    from rag.generator import LlamaCppGenerator

    return LlamaCppGenerator(n_ctx=2048)


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory, embedder) -> Settings:
    """data/ ingested once with the real embedder into a session index."""
    from ingest.pipeline import FolderIngestor

    settings = Settings(index_dir=tmp_path_factory.mktemp("demo-index"))
    report = FolderIngestor(settings, embedder=embedder).run(DATA)
    assert not report.failed, report.summary()
    return settings


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    """A private copy of data/ that a test may change."""
    target = tmp_path / "docs"
    shutil.copytree(DATA, target)
    return target


class WordHashEmbedder:
    """Deterministic bag-of-words vectors (hashed words, L2-normalised): fast, honest plumbing fake."""

    model_id = "word-hash-64"

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]


class ScriptedGenerator:
    """Answers with queued replies, in order; records the messages it was given."""

    model_id = "scripted"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []

    def stream(self, messages, params) -> Iterator[str]:
        self.calls.append(messages)
        reply = self.replies.pop(0)
        yield from (reply[i:i + 7] for i in range(0, len(reply), 7))


def _is_local(host: str) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def outbound_blocked() -> Iterator[list[str]]:
    """Refuse (and record) every connection or name lookup that is not loopback or a Unix socket."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock, address) -> None:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) else str(address)
        if not _is_local(host):
            attempts.append(f"connect {address}")
            raise OSError(f"outbound connection blocked by test: {address}")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host if isinstance(host, str) else (host or b"").decode()):
            attempts.append(f"resolve {host}")
            raise socket.gaierror(f"name lookup blocked by test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex
        socket.getaddrinfo = real_getaddrinfo


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a free loopback port; yields its base URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def subprocess_server(command: list[str], health_url: str, env: dict[str, str] | None = None,
                      attempts: int = 300) -> Iterator[None]:
    """Start a server process, wait until ``health_url`` answers 200, stop it afterwards."""
    import subprocess
    import time

    import httpx

    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(attempts):
            try:
                if httpx.get(health_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail(f"server did not start: {' '.join(command)}")
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)
