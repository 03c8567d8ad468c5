"""The QA layout: questions over a document folder, with accepted answers and where they are.

One JSON object a line: ``{"id", "question", "answers": [...], "source", "pages": [...], "answerable"}``;
``source`` is the file name relative to the folder, ``pages`` the 1-based pages that hold the answer
(empty: any page), ``answerable: false`` for questions the documents cannot answer. An optional
``kind`` names what a question tests, so that metrics are reported per kind: ``near-miss`` (on the
documents' topic, but what is asked is not in them), ``far-off`` (another topic), ``paraphrase``
(answerable, asked in other words than the documents'), ``table`` (a table row and column). An optional
``half`` (``tune``/``report``) and ``doc_kind`` (law, agreement, tender…) split the metrics (``eval.devsets``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None
    pages: tuple[int, ...]
    answerable: bool
    kind: str = ""
    half: str = ""  # "tune" (tune on it) or "report" (never tuned on); empty: no halves
    doc_kind: str = ""  # the kind of document that holds the answer (law, agreement, tender, leaflet…)

    @property
    def category(self) -> str:
        """``kind`` when given, else answerable / unanswerable."""
        return self.kind or ("answerable" if self.answerable else "unanswerable")


def load_qa(path: Path) -> list[QAItem]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(QAItem(str(row.get("id", number)), row["question"], tuple(row.get("answers", [])),
                                row.get("source"), tuple(row.get("pages", [])), bool(row.get("answerable", True)),
                                str(row.get("kind", "")), str(row.get("half") or ""),
                                str(row.get("doc_kind") or "")))
        except (json.JSONDecodeError, KeyError) as exc:
            raise ValueError(f"{path}:{number}: invalid QA line ({exc})") from exc
    return items
