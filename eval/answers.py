"""Answer-quality metrics: exact match and token F1 (SQuAD's recipe) with a normalisation for Spanish and English.

Normalisation: lower case, accents folded ("días" = "dias"), punctuation (including ¿ ¡ « ») removed,
articles removed ("the", "a", "an"; "el", "la", "los", "las", "un", "una", "unos", "unas", "lo"),
whitespace collapsed. A prediction is scored against every accepted answer and keeps the best.
"""

from __future__ import annotations

import re
import string
from collections import Counter

from rag.analysis import fold_accents

_ARTICLES = frozenset({"a", "an", "the", "el", "la", "los", "las", "un", "una", "unos", "unas", "lo"})
_PUNCTUATION = set(string.punctuation) | set("¿¡«»“”‘’–—…")
_CITATION = re.compile(r"\[\d+\]")


def normalize_answer(text: str) -> str:
    text = fold_accents(_CITATION.sub(" ", text).lower())
    text = "".join(" " if c in _PUNCTUATION else c for c in text)
    return " ".join(w for w in text.split() if w not in _ARTICLES)


def exact_match(prediction: str, answers: list[str] | tuple[str, ...]) -> float:
    norm = normalize_answer(prediction)
    return float(any(norm == normalize_answer(a) for a in answers))


def _f1(prediction: list[str], gold: list[str]) -> float:
    common = sum((Counter(prediction) & Counter(gold)).values())
    if not prediction or not gold:
        return float(prediction == gold)
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: list[str] | tuple[str, ...]) -> float:
    tokens = normalize_answer(prediction).split()
    return max((_f1(tokens, normalize_answer(a).split()) for a in answers), default=0.0)


def contains_answer(prediction: str, answers: list[str] | tuple[str, ...]) -> float:
    """1 when a normalised accepted answer occurs in the normalised prediction (extractive answers quote sentences)."""
    norm = f" {normalize_answer(prediction)} "
    return float(any(f" {normalize_answer(a)} " in norm for a in answers if normalize_answer(a)))
