"""Perturbed-sentence negatives: does the grounding judge tell a source's statement from word salad?

    python -m eval.perturb ../shared/eval/rgb/en_fact.dev.jsonl      # English: RGB's positive passages
    python -m eval.perturb ../shared/eval/xquad_es --limit 120       # Spanish: XQuAD paragraphs

Positives are statements the context supports: a context sentence, and a shorter clause of it (a
contiguous span of at least 60% of its words, as a concise answer quotes). Each positive gets negatives
built from it against the same context, the failures a small model produces:

- ``shuffle``: its words in another order (same vocabulary, no longer the same statement);
- ``swap-number``: one number replaced by a number from another context sentence;
- ``swap-entity``: a capitalised name replaced by a name from another context sentence;
- ``negation``: a negation dropped, or added after the first verb-like word;
- ``splice``: its first half joined to the second half of another context sentence.

The judge (``eval.faithfulness.AlignmentJudge``, the same alignment the answer grounding uses) scores
each claim against the context; the ROC AUC of positives against all negatives and per kind is
reported. Deterministic (``--seed``).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from eval.faithfulness import AlignmentJudge
from eval.rgb import best_threshold
from rag.analysis import split_sentences
from rag.embedder import SentenceTransformerEmbedder
from rag.offline import ensure_offline
from rag.settings import Settings

_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)*\b")
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-ZÁÉÍÓÚÑ][a-záéíóúñü]{2,}\b")
_NEGATION = re.compile(r"\b(?:not|no|never|nunca|no)\b\s*", re.IGNORECASE)
_VERBISH = {"en": re.compile(r"\b(?:is|are|was|were|has|have|had|will|can|did|does)\b"),
            "es": re.compile(r"\b(?:es|son|fue|fueron|era|eran|ha|han|había|habían|será|serán|puede|pueden|tiene|tienen)\b")}
KINDS = ("shuffle", "swap-number", "swap-entity", "negation", "splice")


@dataclass(frozen=True)
class Claim:
    text: str
    context: tuple[str, ...]
    label: int  # 1 = supported
    kind: str  # "original", "clause" or a perturbation


def _clause(sentence: str, rng: random.Random) -> str | None:
    words = sentence.split()
    if len(words) < 10:
        return None
    size = max(6, int(len(words) * rng.uniform(0.6, 0.85)))
    start = rng.randint(0, len(words) - size)
    return " ".join(words[start:start + size]).rstrip(",;:") + "."


def perturb(sentence: str, others: list[str], kind: str, language: str, rng: random.Random) -> str | None:
    """One perturbation of ``sentence``; ``others`` are the other sentences of its context."""
    words = sentence.rstrip(".").split()
    if kind == "shuffle":
        if len(words) < 5:
            return None
        shuffled = words[:]
        for _ in range(5):
            rng.shuffle(shuffled)
            if shuffled != words:
                return " ".join(shuffled) + "."
        return None
    if kind == "swap-number":
        own = _NUMBER.findall(sentence)
        pool = [n for o in others for n in _NUMBER.findall(o) if n not in own]
        if not own or not pool:
            return None
        return sentence.replace(rng.choice(own), rng.choice(pool), 1)
    if kind == "swap-entity":
        own = _NAME.findall(sentence)
        pool = [n for o in others for n in _NAME.findall(o) if n not in sentence]
        if not own or not pool:
            return None
        return sentence.replace(rng.choice(own), rng.choice(pool), 1)
    if kind == "negation":
        if _NEGATION.search(sentence):
            return _NEGATION.sub("", sentence, count=1)
        verb = _VERBISH[language].search(sentence)
        if verb is None:
            return None
        word = "not" if language == "en" else "no"
        if language == "es":  # Spanish negates before the verb
            return sentence[:verb.start()] + f"{word} " + sentence[verb.start():]
        return sentence[:verb.end()] + f" {word}" + sentence[verb.end():]
    if kind == "splice":
        longer = [o for o in others if len(o.split()) >= 6]
        if len(words) < 6 or not longer:
            return None
        other = rng.choice(longer).split()
        return " ".join(words[:len(words) // 2] + other[len(other) // 2:])
    raise ValueError(f"unknown perturbation {kind!r}")


def build_claims(contexts: list[list[str]], language: str, per_context: int = 2, seed: int = 13) -> list[Claim]:
    """Positives and perturbed negatives from each context (a list of passages)."""
    rng = random.Random(seed)
    claims: list[Claim] = []
    for passages in contexts:
        sentences = [s for p in passages for s in split_sentences(p) if len(s.split()) >= 6]
        if len(sentences) < 2:
            continue
        for sentence in rng.sample(sentences, min(per_context, len(sentences))):
            others = [s for s in sentences if s != sentence]
            context = tuple(passages)
            claims.append(Claim(sentence, context, 1, "original"))
            if (clause := _clause(sentence, rng)) is not None:
                claims.append(Claim(clause, context, 1, "clause"))
            for kind in KINDS:
                if (text := perturb(sentence, others, kind, language, rng)) is not None and text != sentence:
                    claims.append(Claim(text, context, 0, kind))
    return claims


def score(claims: list[Claim], judge: AlignmentJudge, language: str) -> dict[str, object]:
    def one(claim: Claim) -> float:  # a claim is one sentence; its score, 0 if nothing is left to judge
        found = judge.claim_scores(claim.text, list(claim.context), language)
        return min((s for _, s in found), default=0.0)

    scores = np.array([one(c) for c in claims])
    labels = np.array([c.label for c in claims])
    kinds = np.array([c.kind for c in claims])
    positives = labels == 1
    per_kind = {kind: float(roc_auc_score(np.r_[np.ones(positives.sum()), np.zeros((kinds == kind).sum())],
                                          np.r_[scores[positives], scores[kinds == kind]]))
                for kind in KINDS if (kinds == kind).any()}
    threshold = judge.threshold
    best = best_threshold(scores, labels)
    return {"best_threshold": best, "accuracy_at_best": float(((scores >= best) == labels).mean()),
            "claims": len(claims), "positives": int(positives.sum()), "negatives": int((~positives).sum()),
            "roc_auc": float(roc_auc_score(labels, scores)), "roc_auc_by_kind": per_kind,
            "accuracy_at_threshold": float(((scores >= threshold) == labels).mean()), "threshold": threshold}


def _contexts(path: Path, limit: int | None) -> tuple[list[list[str]], str]:
    if path.is_dir():  # a BEIR folder: each document is one context
        rows = [json.loads(line) for line in (path / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
        contexts = [[r["text"]] for r in rows]
        language = "es" if path.name.endswith("_es") else "en"
    else:  # RGB: each item's positive passages
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        contexts = [list(r["positive"]) for r in rows]
        language = "en"
    return (contexts[:limit] if limit else contexts), language


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="RGB jsonl file or BEIR folder")
    parser.add_argument("--limit", type=int, help="first N contexts")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    settings = Settings()
    contexts, language = _contexts(Path(args.dataset), args.limit)
    judge = AlignmentJudge(SentenceTransformerEmbedder(settings.embedder_model))
    result = score(build_claims(contexts, language, seed=args.seed), judge, language)
    print(json.dumps({"dataset": args.dataset, "language": language, **result}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
