"""Validate a faithfulness judge on RGB's counterfactual set (``en_fact``).

For every item the judge sees the ``positive`` passages twice: with a claim stating ``answer``
(faithful) and with one stating ``fakeanswer`` (not faithful). ROC AUC is threshold-free; the
accuracy is measured on the second half of the items at the threshold that maximises accuracy on
the first half, so the reported accuracy is not tuned on the items it is measured on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from eval.faithfulness import AlignmentJudge, FaithfulnessJudge


@dataclass(frozen=True)
class RgbItem:
    query: str
    answer: str
    fakeanswer: str
    positive: tuple[str, ...]


def _first(value: object) -> str:
    while isinstance(value, list):  # RGB nests accepted answers in lists
        value = value[0] if value else ""
    return str(value)


def load_rgb(path: Path) -> list[RgbItem]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
                items.append(RgbItem(row["query"], _first(row["answer"]), _first(row["fakeanswer"]),
                                     tuple(row["positive"])))
            except (json.JSONDecodeError, KeyError) as exc:
                raise ValueError(f"{path}:{number}: not an RGB item ({exc})") from exc
    return items


def claim(query: str, answer: str) -> str:
    return f"{query.rstrip('?').strip()}: {answer}."


@dataclass
class JudgeValidation:
    items: int
    auc: float
    threshold: float
    accuracy: float  # on the held-out half
    scores: list[tuple[float, int]]  # (score, label 1 = faithful)

    def to_dict(self) -> dict[str, float | int]:
        return {"items": self.items, "roc_auc": round(self.auc, 4), "threshold": round(self.threshold, 4),
                "accuracy_heldout": round(self.accuracy, 4)}


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The cut (midpoint between neighbouring scores) with the highest accuracy."""
    values = np.unique(scores)
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    accuracy = [((scores >= c) == labels).mean() for c in cuts]
    return float(cuts[int(np.argmax(accuracy))])


def validate_judge(items: list[RgbItem], judge: FaithfulnessJudge) -> JudgeValidation:
    scored: list[tuple[float, int]] = []
    for item in tqdm(items, desc="judging RGB", unit="item"):
        for text, label in ((item.answer, 1), (item.fakeanswer, 0)):
            result = judge.judge(claim(item.query, text), list(item.positive), "en")
            score = result.mean_claim_score if isinstance(judge, AlignmentJudge) else result.score
            scored.append((score, label))
    scores = np.array([s for s, _ in scored])
    labels = np.array([lab for _, lab in scored])
    half = 2 * (len(items) // 2)  # whole items: both claims of an item stay on the same side
    threshold = best_threshold(scores[:half], labels[:half]) if half else 0.5
    held_scores, held_labels = scores[half:], labels[half:]
    if len(held_scores) == 0:
        held_scores, held_labels = scores, labels
    accuracy = float(((held_scores >= threshold) == held_labels).mean())
    return JudgeValidation(len(items), float(roc_auc_score(labels, scores)), threshold, accuracy, scored)
