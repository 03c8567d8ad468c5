"""One live index: one owner process, the CLI handing jobs to a running server, and the refusals that guard it.

Real processes throughout: `rag serve`, `rag ingest` and `rag ask` as subprocesses on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys

import httpx
import pytest

from rag.ownership import IndexBusy, IndexOwnership
from tests.conftest import ROOT, WAIT_LIMIT_S, free_port, subprocess_server, wait_for

pytestmark = pytest.mark.slow
KEY = {"authorization": "Bearer k3y"}
HOURS = "La farmacia del barrio abre los domingos de 11:00 a 13:00 para urgencias."


def _rag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=WAIT_LIMIT_S, env=env)


def test_one_owner_at_a_time_and_a_killed_owner_leaves_no_stale_lock(tmp_path):
    first = IndexOwnership(tmp_path)
    me = first.acquire("ingest")
    assert me.pid == os.getpid() and me.token is None  # only a server gets a hand-over token
    with pytest.raises(IndexBusy, match=rf"in use by 'rag ingest' \(pid {os.getpid()}"):
        IndexOwnership(tmp_path).acquire("ingest")
    first.release()
    assert IndexOwnership(tmp_path).owner() is None

    # A process that owns the index and is killed with SIGKILL: the kernel drops its lock.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from rag.ownership import IndexOwnership; "
        f"owner = IndexOwnership({str(tmp_path)!r}); owner.acquire('serve', url='http://127.0.0.1:1'); "
        "print('held', flush=True); time.sleep(600)")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    owner = IndexOwnership(tmp_path).owner()
    assert owner.pid == holder.pid and owner.command == "serve" and len(owner.token) >= 32
    assert stat.S_IMODE((tmp_path / "owner.json").stat().st_mode) == 0o600  # the token is the owner's alone
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert IndexOwnership(tmp_path).owner() is None
    again = IndexOwnership(tmp_path)
    assert again.acquire("ingest").pid == os.getpid()
    again.release()


def test_a_second_ingest_says_who_holds_the_index_or_waits_for_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "horario.md").write_text(HOURS, encoding="utf-8")
    index = tmp_path / "index"
    held = IndexOwnership(index)
    held.acquire("ingest")
    refused = _rag("ingest", str(docs), "--index", str(index), "--wait", "0", "--quiet")
    assert refused.returncode == 3
    assert f"is in use by 'rag ingest' (pid {os.getpid()}" in refused.stderr
    waiting = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(docs), "--index", str(index),
                                "--quiet", "--wait", str(WAIT_LIMIT_S)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = waiting.stderr.readline()
    assert f"waiting for 'rag ingest' (pid {os.getpid()}" in line
    held.release()
    out, err = waiting.communicate(timeout=WAIT_LIMIT_S)
    assert waiting.returncode == 0 and "1 ingested" in out, err


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_settings):
    """`rag serve` as a real process over a copy of the demo index, with an API key set."""
    root = tmp_path_factory.mktemp("live")
    index = root / "index"
    shutil.copytree(demo_settings.index_dir, index)
    port = free_port()
    env = {**os.environ, "RAG_API_KEY": "k3y"}
    base = f"http://127.0.0.1:{port}"
    with subprocess_server([sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port", str(port)],
                           f"{base}/health", env=env):
        wait_for(lambda: httpx.get(f"{base}/ready", headers=KEY).status_code == 200, "the server's models to load")
        yield base, root, index


def test_cli_ingest_while_serving_is_handed_to_the_server(server):
    base, root, index = server
    docs = root / "more-docs"
    docs.mkdir()
    (docs / "horario.md").write_text(HOURS, encoding="utf-8")
    # A first question waits for the server's models on a busy machine: httpx's default 5 s is too short there.
    before = httpx.post(f"{base}/v1/query", headers=KEY, timeout=120,
                        json={"question": "¿Qué horario tiene la farmacia los domingos?", "answer_mode": "extractive"})
    assert before.json()["abstained"] or "horario.md" not in [c["source"] for c in before.json()["citations"]]

    result = _rag("ingest", str(docs), "--index", str(index))
    assert result.returncode == 0, result.stderr
    assert "handing the ingestion over" in result.stderr and "server: 0/1 files" in result.stderr
    assert "files: 1 ingested" in result.stdout  # the same closing summary as a local ingest

    listed = [d["source"] for d in httpx.get(f"{base}/v1/documents", headers=KEY, timeout=60).json()["data"]]
    assert "horario.md" in listed
    after = httpx.post(f"{base}/v1/query", headers=KEY, timeout=120,
                       json={"question": "¿Qué horario tiene la farmacia los domingos?", "answer_mode": "extractive"})
    assert not after.json()["abstained"] and after.json()["citations"][0]["source"] == "horario.md"

    # `rag ask` does not open the index a server owns: the server answers it.
    asked = _rag("ask", "¿Qué horario tiene la farmacia los domingos?", "--index", str(index), "--json",
                 "--mode", "extractive")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["citations"][0]["source"] == "horario.md" and "11:00 a 13:00" in answer["answer"]
    assert any("answered by 'rag serve'" in note for note in answer["trace"]["notes"])


def test_a_link_out_of_the_folder_is_refused(server):
    base, root, index = server
    secret = root / "secret.txt"
    secret.write_text("La clave de la caja fuerte es 4711 y está en el despacho.", encoding="utf-8")
    docs = root / "linked"
    docs.mkdir()
    (docs / "aviso.txt").write_text("El despacho cierra a las 15:00.", encoding="utf-8")
    (docs / "clave.txt").symlink_to(secret)
    result = _rag("ingest", str(docs), "--index", str(index), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "1 ingested" in result.stdout and "FAILED clave.txt: outside the folder" in result.stdout
    hits = httpx.post(f"{base}/v1/chunks", headers=KEY, json={"text": "clave caja fuerte", "limit": 20}).json()
    assert not any("4711" in h["text"] for h in hits["data"])


def test_hand_over_routes_take_only_the_token_and_only_from_loopback(server):
    base, _, index = server
    body = {"path": str(index.parent / "more-docs")}
    assert httpx.post(f"{base}/v1/handover/ingest", json=body).status_code == 401
    assert httpx.post(f"{base}/v1/handover/ingest", json=body, headers=KEY).status_code == 401  # API key alone
    wrong = {"X-Handover-Token": "not-the-token"}
    assert httpx.post(f"{base}/v1/handover/ingest", json=body, headers=wrong).status_code == 401
    token = json.loads((index / "owner.json").read_text())["token"]
    relative = httpx.post(f"{base}/v1/handover/ingest", json={"path": "more-docs"},
                          headers={"X-Handover-Token": token})
    assert relative.status_code == 422 and "absolute" in relative.json()["detail"]


def test_a_remote_client_is_refused_even_with_the_token(demo_settings, embedder):
    from api.app import create_app
    from rag.index import DocumentIndex
    from rag.pipeline import QueryPipeline
    from tests.conftest import ScriptedGenerator

    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, ScriptedGenerator())
    app = create_app(demo_settings, pipeline=pipeline, handover_token="t0ken")
    headers = {"X-Handover-Token": "t0ken"}
    import anyio

    async def post(client_address):
        transport = httpx.ASGITransport(app=app, client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url="http://rag") as client:
            return await client.post("/v1/handover/ingest", json={"path": "/nonexistent"}, headers=headers)

    remote = anyio.run(post, ("192.0.2.10", 40000))
    assert remote.status_code == 403 and "loopback" in remote.json()["detail"]
    local = anyio.run(post, ("127.0.0.1", 40000))
    assert local.status_code == 404  # past both checks: the path itself does not exist


def test_a_second_server_on_the_same_index_is_refused(server):
    _, _, index = server
    second = _rag("serve", "--index", str(index), "--port", str(free_port()))
    assert second.returncode == 3 and "in use by 'rag serve'" in second.stderr
    plan = _rag("ingest", str(index.parent), "--index", str(index), "--dry-run")  # says so, does not wait
    assert plan.returncode == 3 and "in use by 'rag serve'" in plan.stderr


def test_server_killed_during_an_api_ingest_restarts_consistent(tmp_path, demo_settings, shared):
    from ingest.manifest import Manifest
    from rag.bm25 import BM25Index
    from rag.vectorstore import ChromaStore

    index = tmp_path / "index"
    shutil.copytree(demo_settings.index_dir, index)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RAG_BACKGROUND_INGEST_MB": "0.01"}  # any real PDF becomes a background job
    command = [sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: httpx.get(f"{base}/ready").status_code == 200, "the server's models to load")
        before = {d["source"] for d in httpx.get(f"{base}/v1/documents").json()["data"]}
        law = shared / "corpus" / "pdf_text" / "es_BOE-A-2015-10565_ley_39-2015_procedimiento_administrativo.pdf"
        job = httpx.post(f"{base}/v1/ingest/file", timeout=60,
                         files={"file": ("ley_39_2015.pdf", law.read_bytes(), "application/pdf")}).json()
        status_url = f"{base}{job['status_url']}"
        state = wait_for(lambda: (s := httpx.get(status_url).json()["state"]) != "queued" and s, "the job to start")
        server.send_signal(signal.SIGKILL)
        server.wait()
    finally:
        if server.poll() is None:
            server.kill()
    assert state == "running", "the job finished before the kill: nothing was interrupted"
    chroma_dir = index / "chroma"
    with subprocess_server(command, f"{base}/ready", env=env):  # restart: the repair runs before it is ready
        after = {d["source"]: d for d in httpx.get(f"{base}/v1/documents").json()["data"]}
        assert before <= set(after)  # nothing that was committed is lost
        # The accepted upload is resumed in a background job, and lands whole.
        resumed = wait_for(lambda: next((d for d in httpx.get(f"{base}/v1/documents").json()["data"]
                                         if d["source"] == "ley_39_2015.pdf"), None), "the upload to be resumed")
        assert resumed["chunks"] > 100 and resumed["pages"] > 50
        hits = httpx.post(f"{base}/v1/chunks", json={"text": "silencio administrativo", "limit": 3}).json()["data"]
        assert hits[0]["source"] == "ley_39_2015.pdf"
    chroma = set(ChromaStore(path=chroma_dir, collection="documents").ids())
    assert chroma == set(BM25Index(index / "bm25.npz").ids()) == Manifest(index / "manifest.json").chunk_ids()


def test_serve_watch_syncs_an_add_a_change_and_a_delete(tmp_path):
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "turnos.md").write_text("El turno de noche empieza a las 22:00.", encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rag.cli", "serve", "--index", str(tmp_path / "index"), "--port", str(port),
               "--watch", str(folder)]

    def sources() -> dict[str, str]:
        return {d["source"]: d["content_hash"] for d in httpx.get(f"{base}/v1/documents").json()["data"]}

    def answer(question: str) -> dict:
        return httpx.post(f"{base}/v1/query", json={"question": question, "answer_mode": "extractive"},
                          timeout=WAIT_LIMIT_S).json()

    with subprocess_server(command, f"{base}/ready"):
        wait_for(lambda: "turnos.md" in sources(), "the first sync of the watched folder")
        (folder / "guardia.md").write_text("La guardia de fin de semana la cubre el doctor Ruiz.", encoding="utf-8")
        wait_for(lambda: "guardia.md" in sources(), "an added file to be ingested")
        first = sources()["turnos.md"]
        (folder / "turnos.md").write_text("El turno de noche empieza a las 23:00.", encoding="utf-8")
        wait_for(lambda: sources()["turnos.md"] != first, "a changed file to be ingested again")
        assert "23:00" in answer("¿A qué hora empieza el turno de noche?")["answer"]
        (folder / "guardia.md").unlink()
        wait_for(lambda: "guardia.md" not in sources(), "a deleted file's chunks to be removed")
        gone = answer("¿Quién cubre la guardia de fin de semana?")
        assert "guardia.md" not in [c["source"] for c in gone["citations"]]


def test_export_while_serving_then_import_answers_the_same(server, tmp_path):
    base, _, index = server
    snapshot = tmp_path / "backup.tar.gz"
    exported = _rag("index", "export", str(snapshot), "--index", str(index))
    assert exported.returncode == 0, exported.stderr
    assert "it writes the snapshot" in exported.stderr and "exported snapshot of" in exported.stdout
    restored = tmp_path / "restored"
    imported = _rag("index", "import", str(snapshot), "--index", str(restored))
    assert imported.returncode == 0, imported.stderr
    for question in ("¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?",
                     "What does error E7 mean on the thermostat?"):
        served = httpx.post(f"{base}/v1/query", headers=KEY, timeout=WAIT_LIMIT_S,
                            json={"question": question, "answer_mode": "extractive"}).json()
        asked = _rag("ask", question, "--index", str(restored), "--json", "--mode", "extractive")
        assert asked.returncode == 0, asked.stderr
        again = json.loads(asked.stdout)
        assert again["answer"] == served["answer"] and not again["abstained"]
        assert [(c["source"], c["page"], c["chunk_id"]) for c in again["citations"]] == \
            [(c["source"], c["page"], c["chunk_id"]) for c in served["citations"]]


def test_import_refuses_a_snapshot_of_another_embedder(server, tmp_path):
    import io
    import tarfile

    _, _, index = server
    snapshot = tmp_path / "backup.tar.gz"
    assert _rag("index", "export", str(snapshot), "--index", str(index)).returncode == 0
    other = tmp_path / "other.tar.gz"
    with tarfile.open(snapshot, "r:gz") as source, tarfile.open(other, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "snapshot.json":
                info = json.loads(data)
                info["fingerprint"]["embedder"] = "intfloat/multilingual-e5-small"
                data = json.dumps(info).encode()
                member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    refused = _rag("index", "import", str(other), "--index", str(tmp_path / "restored"))
    assert refused.returncode == 2
    assert "made with the embedder 'intfloat/multilingual-e5-small'" in refused.stderr
    assert not (tmp_path / "restored" / "manifest.json").exists()


def test_eight_clients_while_a_thirty_file_ingest_runs(server):
    from concurrent.futures import ThreadPoolExecutor

    base, root, index = server
    docs = root / "thirty"
    docs.mkdir()
    for i in range(30):
        (docs / f"aviso_{i:02d}.md").write_text(f"# Aviso {i}\n\nLa sala {i} del edificio B se limpia cada {i % 7 + 1} "
                                                f"días y la revisa el equipo {chr(65 + i % 26)}.", encoding="utf-8")
    questions = ["¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?",
                 "What does error E7 mean on the thermostat?", "¿Cada cuántos días se limpia la sala 12?"]

    def client(n: int) -> list[httpx.Response]:
        mode = "generative" if n < 2 else "extractive"  # two clients need the model, six do not
        return [httpx.post(f"{base}/v1/query", headers=KEY, timeout=WAIT_LIMIT_S,
                           json={"question": questions[(n + k) % 3], "answer_mode": mode, "max_tokens": 8})
                for k in range(2 if n < 2 else 5)]

    with ThreadPoolExecutor(9) as pool:
        ingest = pool.submit(_rag, "ingest", str(docs), "--index", str(index), "--quiet")
        replies = [r for rs in pool.map(client, range(8)) for r in rs]
        ingested = ingest.result()
    assert ingested.returncode == 0 and "files: 30 ingested" in ingested.stdout, ingested.stderr
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 30, statuses
    assert all(r.headers["retry-after"] for r in replies if r.status_code == 503)
    listed = {d["source"] for d in httpx.get(f"{base}/v1/documents", headers=KEY).json()["data"]}
    for reply in (r.json() for r in replies if r.status_code == 200):
        assert reply["abstained"] or reply["citations"]
        assert {c["source"] for c in reply["citations"]} <= listed  # every cited document is in the index
    print(f"\n{len(replies)} requests during a 30-file ingest: {statuses.count(200)} answered, "
          f"{statuses.count(503)} refused with Retry-After, 0 errors")
