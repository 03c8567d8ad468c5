"""The CLI's side of a hand-over: when ``rag serve`` owns an index, ``rag ingest`` and ``rag ask`` send their
job to it over loopback, with the token the server wrote into the index folder, instead of opening the index."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rag.ownership import Owner

HEADER = "X-Handover-Token"


class HandoverError(RuntimeError):
    """The server that owns the index could not take the job."""


def _client(owner: Owner, timeout: float = 600.0):
    import httpx

    if not owner.url or not owner.token:
        raise HandoverError(f"{owner.describe()} takes no hand-over (it serves no loopback address)")
    return httpx.Client(base_url=owner.url, headers={HEADER: owner.token}, timeout=timeout, trust_env=False)


def _checked(response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:300]
        raise HandoverError(f"the server refused the job ({response.status_code}): {detail}")
    return response.json()


def ingest(owner: Owner, path: Path, progress: bool = True, poll_s: float = 0.5,
           collection: str | None = None) -> dict[str, Any]:
    """Has the server ingest ``path`` (absolute); shows its progress on stderr; returns the job's result."""
    import httpx

    from ingest.progress import describe

    try:
        with _client(owner) as client:
            job = _checked(client.post("/v1/handover/ingest",
                                       json={"path": str(path.resolve()), "collection": collection}))
            status_url, shown = job["status_url"], None
            while True:
                state = _checked(client.get(status_url))
                current = (state.get("progress") or {}).get("current") or ""
                line = f"server: {describe(state)} {current}"
                if progress and state["state"] == "running" and line != shown:
                    print(line.rstrip(), file=sys.stderr)
                    shown = line
                if state["state"] in ("done", "failed"):
                    if state.get("result") is None:
                        raise HandoverError(f"the server's ingestion failed: {state.get('error')}")
                    return state["result"]
                time.sleep(poll_s)
    except httpx.HTTPError as exc:
        raise HandoverError(f"could not reach {owner.describe()}: {exc}") from exc


def ask(owner: Owner, body: dict[str, Any]) -> dict[str, Any]:
    """Has the server answer (``body`` as ``POST /v1/query``); returns the answer as ``Answer.to_dict``."""
    import httpx

    try:
        with _client(owner) as client:
            for _ in range(120):  # the server may still be loading its models
                response = client.post("/v1/handover/query", json=body)
                if response.status_code != 503:
                    return _checked(response)
                time.sleep(float(response.headers.get("retry-after", "2")))
            return _checked(response)
    except httpx.HTTPError as exc:
        raise HandoverError(f"could not reach {owner.describe()}: {exc}") from exc


def export(owner: Owner, target: Path) -> dict[str, Any]:
    """Has the server write a snapshot of its index to ``target`` (absolute) between ingestions."""
    import httpx

    try:
        with _client(owner) as client:
            return _checked(client.post("/v1/handover/export", json={"path": str(target)}))
    except httpx.HTTPError as exc:
        raise HandoverError(f"could not reach {owner.describe()}: {exc}") from exc
