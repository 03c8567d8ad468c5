"""BEIR-layout datasets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BeirDocument:
    id: str
    title: str
    text: str


@dataclass
class BeirDataset:
    name: str
    corpus: list[BeirDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str
    corpus_hash: str


def _jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
    return rows


def choose_split(folder: Path, split: str | None) -> Path:
    qrels_dir = folder / "qrels"
    available = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not available:
        raise FileNotFoundError(f"{folder}: no qrels/*.tsv found (BEIR layout expected)")
    if split is None:
        split = available[0] if len(available) == 1 else next((s for s in ("dev", "test") if s in available), None)
        if split is None:
            raise ValueError(f"{folder}: several qrels splits {available}; choose one with --split")
    if split not in available:
        raise ValueError(f"{folder}: split {split!r} not found; available: {available}")
    return qrels_dir / f"{split}.tsv"


def load_beir(folder: Path, split: str | None = None) -> BeirDataset:
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: missing {name} (BEIR layout expected)")
    qrels_path = choose_split(folder, split)
    corpus = [BeirDocument(str(r["_id"]), r.get("title") or "", r.get("text") or "")
              for r in _jsonl(folder / "corpus.jsonl")]
    queries = {str(r["_id"]): r["text"] for r in _jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(float(row["score"]))
    qrels = {q: docs for q, docs in qrels.items() if q in queries}
    digest = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()[:16]
    return BeirDataset(folder.name, corpus, queries, qrels, qrels_path.stem, digest)


def load_answers(folder: Path) -> dict[str, list[str]]:
    """``answers.jsonl`` next to a BEIR set (XQuAD has one): query id -> accepted answer strings."""
    path = folder / "answers.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no answers.jsonl, so answers cannot be scored (drop --answers)")
    return {str(r["_id"]): [str(a) for a in r["answers"]] for r in _jsonl(path)}
