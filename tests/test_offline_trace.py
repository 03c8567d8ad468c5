"""The product keeps itself offline: real `rag ingest`, `rag ask` and `rag serve` processes, started with a
clean environment (none of the offline variables set), inside a network namespace without network
(`unshare -rn`), with every connect() call traced by strace. Only loopback and Unix sockets may be reached.

This proves what ``tests/conftest.py`` cannot: there the harness itself sets the offline variables, so the
product's own ``ensure_offline()`` calls could be deleted unnoticed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.offline import OFFLINE_ENV
from tests.conftest import DATA, ROOT

QUESTION = "¿Cuál es la dosis máxima diaria de paracetamol por vía oral en adultos?"
# A Hugging Face id that is in no cache here: the one path on which a library would reach a hub.
HUB_RERANKER = "BAAI/bge-reranker-base"
PORT = 8765  # inside the test's own network namespace, so it cannot clash with anything

_TOOLS = {"strace": "strace", "unshare": "util-linux", "ip": "iproute2"}
_missing = [package for tool, package in _TOOLS.items() if shutil.which(tool) is None]


def _namespaces_work() -> str | None:
    if _missing:
        return f"needs the Debian packages {', '.join(_missing)} (make test installs them as root)"
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace here (unshare -rn: {probe.stderr.strip()})"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_namespaces_work() is not None,
                                                   reason=_namespaces_work() or "")]


@dataclass(frozen=True)
class Connect:
    pid: str
    family: str
    address: str
    port: int | None
    line: str

    @property
    def allowed(self) -> bool:
        """Unix sockets, netlink and AF_UNSPEC (a disconnect) are local; IP only to loopback, and never DNS."""
        if self.family in ("AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_UNSPEC"):
            return True
        if self.family in ("AF_INET", "AF_INET6"):
            loopback = self.address.startswith("127.") or self.address in ("::1", "::ffff:127.0.0.1")
            return loopback and self.port != 53  # a name lookup is an outbound attempt wherever it goes
        return False


_FAMILY = re.compile(r"sa_family=(AF_\w+)")
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def parse_connects(trace: str) -> list[Connect]:
    """connect() calls in an ``strace -f -e trace=connect`` log."""
    found = []
    for line in trace.splitlines():
        if "connect(" not in line:
            continue
        family = _FAMILY.search(line)
        port = _PORT.search(line)
        address = _ADDR.search(line)
        found.append(Connect(line.split()[0], family.group(1) if family else "?",
                             next((g for g in address.groups() if g), "") if address else "",
                             int(port.group(1)) if port else None, line.strip()))
    return found


def test_trace_parser_flags_what_leaves_the_machine():
    trace = (
        '101 connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT\n'
        '101 connect(5, {sa_family=AF_INET, sin_port=htons(8765), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
        '102 connect(7, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = -1\n'
        '102 connect(7, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0\n'
        '103 connect(9, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2600:1901:0:38d7::", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH\n'
        '104 connect(4, {sa_family=AF_UNSPEC, sa_data="\\0\\0"}, 16) = 0\n')
    verdicts = [(c.family, c.address, c.port, c.allowed) for c in parse_connects(trace)]
    assert verdicts == [("AF_UNIX", "", None, True), ("AF_INET", "127.0.0.1", 8765, True),
                        ("AF_INET", "10.255.255.53", 53, False), ("AF_INET", "127.0.0.53", 53, False),
                        ("AF_INET6", "2600:1901:0:38d7::", 443, False), ("AF_UNSPEC", "", None, True)]


_CLIENT = r"""
import json, sys, time, httpx
base = sys.argv[1]
deadline = time.monotonic() + 600
while True:
    try:
        if httpx.get(base + "/ready", timeout=5).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    if time.monotonic() > deadline:
        sys.exit("server never became ready")
    time.sleep(0.5)
reply = httpx.post(base + "/v1/query", json={"question": sys.argv[2], "answer_mode": "extractive"}, timeout=600)
print(json.dumps({"status": reply.status_code, "body": reply.json()}))
"""

_SCRIPT = r"""
set -u
ip link set lo up
trace() { name=$1; shift; strace -f -qq --seccomp-bpf -e trace=connect -o "$OUT/$name.trace" "$@"; }
trace ingest "$BIN/rag" ingest "$DOCS" --index "$IDX" --quiet > "$OUT/ingest.out" 2> "$OUT/ingest.err"
echo "ingest=$?" >> "$OUT/status"
RAG_LLM_CAPABLE=true trace ask "$BIN/rag" ask "$QUESTION" --index "$IDX" --json > "$OUT/ask.json" 2> "$OUT/ask.err"
echo "ask=$?" >> "$OUT/status"
strace -f -qq --seccomp-bpf -e trace=connect -o "$OUT/serve.trace" \
  "$BIN/rag" serve --index "$IDX" --port "$PORT" > "$OUT/serve.out" 2> "$OUT/serve.err" &
tracer=$!
"$BIN/python" -c "$CLIENT" "http://127.0.0.1:$PORT" "$QUESTION" > "$OUT/query.json" 2> "$OUT/query.err"
echo "query=$?" >> "$OUT/status"
# SIGINT to the server itself, not to strace (its parent, whose command line holds the same words)
pkill -INT -f -- "^[^ ]*python[0-9.]* $BIN/rag serve --index $IDX --port $PORT"
wait $tracer
echo "serve=$?" >> "$OUT/status"
"""


@pytest.fixture(scope="module")
def traced(tmp_path_factory) -> Path:
    """Runs ingest, ask and serve (+ one HTTP question) in a namespace without network; returns the folder."""
    out = tmp_path_factory.mktemp("offline-trace")
    home = out / "home"  # an empty home: no Hugging Face cache, no config
    home.mkdir()
    bin_dir = Path(sys.executable).parent
    env = {"PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "OUT": str(out), "BIN": str(bin_dir), "DOCS": str(DATA), "IDX": str(out / "index"),
           "QUESTION": QUESTION, "PORT": str(PORT), "CLIENT": _CLIENT,
           "RAG_RERANKER_MODEL": HUB_RERANKER}
    assert not set(OFFLINE_ENV) & set(env)  # the product must set them itself
    subprocess.run(["unshare", "-rn", "bash", "-c", _SCRIPT], env=env, cwd=ROOT, timeout=1800, check=True)
    return out


def _status(out: Path) -> dict[str, int]:
    lines = (out / "status").read_text().split()
    return {k: int(v) for k, v in (line.split("=") for line in lines)}


def _outbound(out: Path, name: str) -> list[str]:
    connects = parse_connects((out / f"{name}.trace").read_text())
    return [c.line for c in connects if not c.allowed]


def test_ingest_makes_no_outbound_connection(traced):
    assert _status(traced)["ingest"] == 0, (traced / "ingest.err").read_text()
    assert "4 ingested" in (traced / "ingest.out").read_text()
    assert _outbound(traced, "ingest") == []


def test_ask_answers_with_the_gguf_and_falls_back_from_the_hub_reranker_offline(traced):
    assert _status(traced)["ask"] == 0, (traced / "ask.err").read_text()
    answer = json.loads((traced / "ask.json").read_text())
    assert not answer["abstained"]
    assert "4 g" in answer["answer"]  # the leaflet: "máximo 4 g al día" for adults
    assert ("prospecto_paracetamol.pdf", 2) in [(c["source"], c["page"]) for c in answer["citations"]]
    assert answer["trace"]["reranker"] == "none"
    assert answer["trace"]["generator"] == "SmolLM2-135M-Instruct.Q4_1.gguf"  # the GGUF ran (declared capable)
    assert HUB_RERANKER in answer["trace"]["reranker_fallback"]
    assert _outbound(traced, "ask") == []


def test_serve_answers_over_http_with_no_outbound_connection(traced):
    status = _status(traced)
    assert status["query"] == 0, (traced / "query.err").read_text()
    reply = json.loads((traced / "query.json").read_text())
    assert reply["status"] == 200 and not reply["body"]["abstained"]
    assert reply["body"]["citations"][0]["source"] == "prospecto_paracetamol.pdf"
    assert _outbound(traced, "serve") == []
    assert status["serve"] == 0, (traced / "serve.err").read_text()[-2000:]  # it shut down cleanly on SIGINT

