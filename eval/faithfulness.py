"""Faithfulness: the share of an answer's claims that the retrieved context supports.

Two judges behind one Protocol:

- ``AlignmentJudge`` (default, no LLM): claims are the answer's sentences; each is scored against
  every context sentence or table row and keeps its best score (the AlignScore recipe): the mean of
  the embedder's cosine and the share of its content terms found there in the same order, lowered
  when a number or name is not in that unit or a negation disagrees (``rag.grounding.Grounder.align``,
  the same alignment that checks generated answers). A claim counts as supported at or above ``threshold`` (calibrated on RGB, see
  ``eval.rgb``).
- ``LLMJudge``: ragas-style: the configured LLM rewrites the answer as standalone statements, then
  gives a yes/no verdict per statement against the context. Only as good as the model: use a capable
  GGUF or OpenAI-compatible server, not the embedded 135M model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from rag.analysis import split_sentences
from rag.embedder import Embedder
from rag.generator import Generator, SamplingParams, generate
from rag.grounding import Grounder, claims

# Between the two dev calibrations of the order-aware alignment: the first half of RGB en_fact picks 0.47
# (`rag eval ../shared/eval/rgb/en_fact.dev.jsonl`; its claims are "question: answer", never a source's
# word order) and the perturbed sentences of `python -m eval.perturb` pick 0.83 (their positives quote the
# source). 0.60 keeps paraphrased true claims and rejects on-topic inventions in the tests.
DEFAULT_THRESHOLD = 0.60


@dataclass(frozen=True)
class ClaimVerdict:
    claim: str
    score: float
    supported: bool


@dataclass
class Faithfulness:
    score: float  # share of supported claims; 0 for an answer without claims
    claims: list[ClaimVerdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a judge that fell back to a simpler method

    @property
    def mean_claim_score(self) -> float:
        return sum(c.score for c in self.claims) / len(self.claims) if self.claims else 0.0


@runtime_checkable
class FaithfulnessJudge(Protocol):
    name: str

    def judge(self, answer: str, contexts: list[str], language: str = "en") -> Faithfulness: ...


def context_units(contexts: list[str]) -> list[str]:
    """Context sentences, and table rows (Markdown) with their header."""
    units: list[str] = []
    for text in contexts:
        lines = [ln for ln in text.splitlines() if ln.strip().startswith("|")]
        if len(lines) > 2:
            units.extend(f"{lines[0]}\n{lines[1]}\n{row}" for row in lines[2:])
            text = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("|"))
        units.extend(s for s in split_sentences(text) if len(s.strip()) > 2)
    return units


class AlignmentJudge:
    """Embedder + lexical alignment of each claim with its best context unit.

    >>> AlignmentJudge(embedder).judge("Paris is the capital of France.", ["France's capital is Paris."]).score
    """

    name = "alignment"

    def __init__(self, embedder: Embedder, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.grounder = Grounder(embedder)
        self.threshold = threshold

    def claim_scores(self, answer: str, contexts: list[str], language: str = "en") -> list[tuple[str, float]]:
        sentences = claims(answer)
        alignments = self.grounder.align(sentences, context_units(contexts), language)
        return [(s, a.combined) for s, a in zip(sentences, alignments, strict=True)]

    def judge(self, answer: str, contexts: list[str], language: str = "en") -> Faithfulness:
        verdicts = [ClaimVerdict(c, score, score >= self.threshold)
                    for c, score in self.claim_scores(answer, contexts, language)]
        share = sum(v.supported for v in verdicts) / len(verdicts) if verdicts else 0.0
        return Faithfulness(share, verdicts)


_STATEMENTS = ("Rewrite the answer below as short, standalone factual statements, one per line, "
               "without numbering and nothing else.\n\nQuestion context: {question}\nAnswer: {answer}")
_VERDICT = ("Context:\n{context}\n\nStatement: {statement}\n\nCan the statement be inferred from the context "
            "alone? Reply with one word: yes or no.")
FALLBACK_NOTE = "the model wrote no usable statements; judged the answer's own sentences instead"
_YES = re.compile(r"^\W*(yes|s[ií])\b", re.IGNORECASE)


class LLMJudge:
    """Statement extraction and one yes/no verdict per statement by the configured LLM."""

    name = "llm"

    def __init__(self, generator: Generator, max_context_chars: int = 6000) -> None:
        self.generator = generator
        self.max_context_chars = max_context_chars
        self.params = SamplingParams(max_tokens=200, temperature=0.0, seed=0)
        self.verdict_params = SamplingParams(max_tokens=3, temperature=0.0, seed=0)

    def parse_statements(self, reply: str) -> list[str]:
        """Statements in the model's reply: one per line, list markers removed, fragments (< 2 words) dropped."""
        found = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", ln).strip() for ln in reply.splitlines()]
        return [s for s in found if len(s.split()) >= 2]

    def statements(self, answer: str, question: str = "") -> tuple[list[str], bool]:
        """The answer as standalone statements, and whether they came from the model (else: its sentences)."""
        reply = generate(self.generator, [{"role": "user", "content": _STATEMENTS.format(
            question=question or "-", answer=answer)}], self.params)
        parsed = self.parse_statements(reply)
        return (parsed, True) if parsed else (claims(answer), False)

    def judge(self, answer: str, contexts: list[str], language: str = "en", question: str = "") -> Faithfulness:
        context = "\n\n".join(contexts)[: self.max_context_chars]
        statements, from_model = self.statements(answer, question)
        notes = [] if from_model else [FALLBACK_NOTE]
        verdicts = []
        for statement in statements:
            reply = generate(self.generator, [{"role": "user", "content": _VERDICT.format(
                context=context, statement=statement)}], self.verdict_params)
            yes = bool(_YES.match(reply))
            verdicts.append(ClaimVerdict(statement, 1.0 if yes else 0.0, yes))
        share = sum(v.supported for v in verdicts) / len(verdicts) if verdicts else 0.0
        return Faithfulness(share, verdicts, notes)
