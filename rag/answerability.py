"""Whether a sentence or table row of the sources answers the question: a logistic model over its scores.

The rule score of ``Grounder.unit_scores`` (cosine + term coverage, times focus) cannot tell a near miss
(the article is there, the paragraph with the answer is not) from an answerable question well: its ROC AUC
on XQuAD-es near misses is about 0.91. Several weak signals together do better: the multilingual dense
model's cosine (the judge embedder is English-only), the question's terms weighted by how few of the
retrieved units hold them (the topic words are everywhere, what is asked is not), the unit's source rank.
The 16 best sentences of the top sources by the rule score get the features below; the model gives each a
probability of holding the answer (times the unit's focus factor when below 1: ``rag.focus`` stays a hard
check); the best one's probability is the question's answerability, and the evidence gate abstains below the
model's threshold. Table rows keep the rule score (no table question was in the fit).

The weights are fit on the ``tune`` halves of the XQuAD near-miss sets (``eval.nearmiss``) with
``python -m eval.calibrate --fit-answerability ../shared/eval/xquad_es ../shared/eval/xquad_en``, which
writes ``rag/answerability.json`` (the shipped model) with the threshold and the rates on the ``report``
halves. A unit is a positive example when its question is answerable and it contains the gold answer.
The model belongs to the dense model it was fit with: with another one the rule score gates (``trace``).

A unit in another language than the question (an English question over a Spanish law) gets a model of its own
(``cross_lingual``, fit with ``--cross-lingual`` on all tune rows, XQuAD's questions asked over the other
language's documents included, with its own threshold chosen on those crossed halves): one set of weights for
both kinds had to trade the Spanish near misses (the question's words found nowhere in the context) against
questions that share no words with any source. Its probability is put on the main model's scale
(times the main threshold over its own), so the gate, the trace and ``min_answerability`` read one scale.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.grounding import Unit, UnitScores

DEFAULT_PATH = Path(__file__).with_name("answerability.json")

FEATURES = ("evidence", "judge_cosine", "dense_cosine", "lexical", "local_lexical", "ordered", "focus",
            "relevance", "source_rank", "spanish", "cross_lingual", "cross_lingual_dense", "context_lexical")


def unit_features(scores: UnitScores, dense_cosine: np.ndarray, relevance: list[float], units: list[Unit],
                  language: str, source_ranks: list[int] | None = None,
                  source_languages: list[str | None] | None = None) -> np.ndarray:
    """One row of ``FEATURES`` per unit. ``relevance``: each source's relevance (judge cosine to the question),
    indexed by ``Unit.source_index - 1``; ``source_rank`` is 1 / the source's rank (the first source weighs most):
    its position in the sources unless ``source_ranks`` (1-based, per source) says otherwise.
    ``source_languages``: each source's document language; a unit in another language than the question
    (an English question over a Spanish law) shares no words with it, so only the dense model's cosine can
    speak for it: ``cross_lingual`` flags it and ``cross_lingual_dense`` gives its cosine a weight of its own.
    ``context_lexical``: the question's weighted terms found anywhere in the units (the same for every unit of the
    question; 0 on another-language unit): a near miss keeps the topic words and loses what is asked."""
    n = len(units)
    ranks = source_ranks or list(range(1, len(relevance) + 1))
    source = np.array([ranks[u.source_index - 1] for u in units], dtype=float)
    crossed = np.array([1.0 if source_languages and source_languages[u.source_index - 1] not in (None, language)
                        else 0.0 for u in units])
    columns = {
        "cross_lingual": crossed, "cross_lingual_dense": crossed * np.asarray(dense_cosine, dtype=float).reshape(n),
        "evidence": scores.score, "judge_cosine": scores.semantic, "dense_cosine": dense_cosine,
        "lexical": scores.lexical, "local_lexical": scores.local_lexical, "ordered": scores.ordered,
        "focus": np.minimum(scores.focus, 1.5), "relevance": np.array([relevance[u.source_index - 1] for u in units]),
        "source_rank": 1.0 / source, "spanish": np.full(n, 1.0 if language == "es" else 0.0),
        "context_lexical": (1.0 - crossed) * scores.context_lexical,
    }
    return np.column_stack([np.asarray(columns[name], dtype=float).reshape(n) for name in FEATURES]) \
        if n else np.zeros((0, len(FEATURES)))


@dataclass(frozen=True)
class AnswerabilityModel:
    """Standardised logistic regression: p = sigmoid(bias + sum(weight * (x - mean) / scale)) over its
    ``features`` (a subset of ``FEATURES``, read by name from rows laid out as ``FEATURES``); units in another
    language than the question go to ``cross_lingual`` when there is one."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float  # probability; the evidence gate abstains below it
    dense_model: str  # the dense model whose cosines it was fit on
    fitted_on: str = ""
    report: dict | None = None  # rates on the held-out halves at the threshold, as fit
    cross_lingual: AnswerabilityModel | None = None  # for units in another language than the question

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Each unit's probability of holding the answer, times its focus factor where that is below 1: what
        the question asks for (an amount, a date, a count of the asked noun, "primer", "2015") must be in the
        unit, a condition XQuAD's questions rarely test and so the fit would not learn. Units in another
        language go to ``cross_lingual``, on this model's scale (its probability times this threshold over its
        own, at most 1)."""
        if rows.shape[0] == 0:
            return np.zeros(0)
        columns = rows[:, [FEATURES.index(name) for name in self.features]]
        z = (columns - np.array(self.mean)) / np.array(self.scale) @ np.array(self.weights) + self.bias
        found = np.minimum(rows[:, FEATURES.index("focus")], 1.0) / (1.0 + np.exp(-z))
        crossed = rows[:, FEATURES.index("cross_lingual")] > 0.5
        if self.cross_lingual is not None and crossed.any():
            other = self.cross_lingual.probabilities(rows[crossed])
            found[crossed] = np.minimum(other * self.threshold / self.cross_lingual.threshold, 1.0)
        return found

    def usable_with(self, dense_model: str) -> bool:
        return (set(self.features) <= set(FEATURES) and self.dense_model == dense_model
                and (self.cross_lingual is None or self.cross_lingual.usable_with(dense_model)))

    @classmethod
    def from_dict(cls, data: dict) -> AnswerabilityModel:
        nested = data.get("cross_lingual")
        return cls(**{**data, **{k: tuple(data[k]) for k in ("features", "mean", "scale", "weights")},
                      "cross_lingual": cls.from_dict(nested) if nested else None})

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> AnswerabilityModel:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def save(self, path: Path = DEFAULT_PATH) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def fit(rows: np.ndarray, labels: np.ndarray, dense_model: str, fitted_on: str = "",
        regularisation: float = 1.0, features: tuple[str, ...] = FEATURES,
        sample_weight: np.ndarray | None = None) -> AnswerabilityModel:
    """Logistic regression on standardised ``features`` (columns of ``rows``, laid out as ``FEATURES``;
    scikit-learn's L2-regularised solver; ``sample_weight``: one per row); threshold 0.5 until the caller chooses
    one (``dataclasses.replace``)."""
    from sklearn.linear_model import LogisticRegression

    rows = rows[:, [FEATURES.index(name) for name in features]]
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=regularisation, max_iter=5000).fit((rows - mean) / scale, labels,
                                                                    sample_weight=sample_weight)
    return AnswerabilityModel(tuple(features), tuple(map(float, mean)), tuple(map(float, scale)),
                              tuple(map(float, model.coef_[0])), float(model.intercept_[0]), 0.5, dense_model,
                              fitted_on)
