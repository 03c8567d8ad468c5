"""QA-layout evaluation over an ingested document folder: answers, citations and abstention.

One JSON object a line: ``{"id", "question", "answers": [...], "source", "pages": [...], "answerable"}``.
"""

from __future__ import annotations

import json
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rag.pipeline import QueryOptions, QueryPipeline


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None
    pages: tuple[int, ...]
    answerable: bool


def load_qa(path: Path) -> list[QAItem]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(QAItem(str(row.get("id", number)), row["question"], tuple(row.get("answers", [])),
                                row.get("source"), tuple(row.get("pages", [])), bool(row.get("answerable", True))))
        except (json.JSONDecodeError, KeyError) as exc:
            raise ValueError(f"{path}:{number}: invalid QA line ({exc})") from exc
    return items


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).split())


@dataclass
class QAReport:
    items: int
    metrics: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        return "\n".join([f"QA set: {self.items} questions"] +
                         [f"  {k:<22} {v:.3f}" for k, v in self.metrics.items()])


def evaluate_qa(items: list[QAItem], pipeline: QueryPipeline, answer_mode: str | None = None) -> QAReport:
    rows = []
    for item in tqdm(items, desc="answering", unit="question"):
        started = time.perf_counter()
        answer = pipeline.answer(item.question, QueryOptions(answer_mode=answer_mode))
        cited = [(c.source, c.page) for c in answer.citations]
        right_source = any(s == item.source and (not item.pages or p in item.pages) for s, p in cited)
        rows.append({"id": item.id, "answerable": item.answerable, "abstained": answer.abstained,
                     "contains_answer": any(_norm(a) in _norm(answer.text) for a in item.answers),
                     "citation_correct": right_source, "seconds": time.perf_counter() - started,
                     "answer": answer.text, "citations": cited})
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def share(rs: list[dict], key: str) -> float:
        return sum(bool(r[key]) for r in rs) / len(rs) if rs else 0.0

    metrics = {"answer_contains_gold": share(answerable, "contains_answer"),
               "citation_accuracy": share(answerable, "citation_correct"),
               "false_abstention": share(answerable, "abstained"),
               "abstention_unanswerable": share(unanswerable, "abstained"),
               "mean_seconds": sum(r["seconds"] for r in rows) / len(rows) if rows else 0.0}
    return QAReport(len(rows), metrics, rows)
