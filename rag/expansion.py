"""Query expansion: sub-questions, paraphrases (multi-query) and hypothetical answers (HyDE).

Each expansion is a retrieval query of its own; the retriever runs them all and fuses the ranked
lists with the original question's. ``decompose`` is rule-based (no model); ``multi-query`` and
``hyde`` ask the configured LLM, so they cost one generation each and are off by default: with the
embedded 135M model they do not pay off (see the evaluation notes in the README).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from rag.errors import InvalidRequest
from rag.generator import Generator, SamplingParams, generate

log = logging.getLogger(__name__)

ExpansionName = Literal["decompose", "multi-query", "hyde"]
EXPANSIONS: tuple[str, ...] = ("decompose", "multi-query", "hyde")


@dataclass(frozen=True)
class ExpandedQuery:
    """One retrieval query. ``dense_only``: a hypothetical passage is embedded, not keyword-searched."""

    text: str
    kind: str  # "original", "sub-question", "paraphrase", "hyde"
    dense_only: bool = False


_QUESTION_WORDS = {
    "es": r"qu[eé]|cu[aá]l(?:es)?|cu[aá]nd[oa]s?|cu[aá]nt[oa]s?|d[oó]nde|c[oó]mo|qui[eé]n(?:es)?|por qu[eé]",
    "en": r"what|which|when|where|how|who|whom|whose|why|is|are|does|do|can",
}
_JOINERS = {"es": r"\s*(?:,|;)?\s+(?:y|e)\s+", "en": r"\s*(?:,|;)?\s+and\s+"}


def decompose(question: str, language: str) -> list[str]:
    """Split a multi-part question into its parts; a single question comes back alone.

    Splits at question marks ("¿A? ¿B?") and at "y"/"and" followed by a question word
    ("¿Cuál es la dosis y cuándo se toma?" -> "¿Cuál es la dosis?", "¿cuándo se toma?").
    """
    parts = [p.strip(" ¿?¡!") for p in re.split(r"\?\s*", question) if p.strip(" ¿?¡!")]
    words = _QUESTION_WORDS.get(language, _QUESTION_WORDS["en"])
    joiner = _JOINERS.get(language, _JOINERS["en"])
    split: list[str] = []
    for part in parts:
        pieces = re.split(rf"{joiner}(?=(?:{words})\b)", part, flags=re.IGNORECASE)
        split.extend(p.strip() for p in pieces if len(p.split()) >= 2)
    if len(split) < 2:
        return [question]
    if language == "es":
        return [f"¿{p}?" for p in split]
    return [f"{p}?" for p in split]


_MULTI_QUERY = {
    "es": ("Reescribe la pregunta de {n} formas distintas, con otras palabras y sinónimos, para buscarla en "
           "documentos. Escribe una por línea, sin numerar y sin nada más.\n\nPregunta: {q}"),
    "en": ("Rewrite the question in {n} different ways, using other words and synonyms, to search documents "
           "for it. Write one per line, without numbers and nothing else.\n\nQuestion: {q}"),
}
_HYDE = {
    "es": "Escribe un párrafo breve, como el de un documento, que responda a la pregunta.\n\nPregunta: {q}",
    "en": "Write a short paragraph, as found in a document, that answers the question.\n\nQuestion: {q}",
}


class QueryExpander:
    """Builds the retrieval queries for a question.

    >>> QueryExpander(generator).expand("¿Dosis y cuándo se toma?", "es", ("decompose",))
    """

    def __init__(self, generator: Generator | None = None, paraphrases: int = 3,
                 params: SamplingParams | None = None) -> None:
        self.generator = generator
        self.paraphrases = paraphrases
        self.params = params or SamplingParams(max_tokens=160, temperature=0.0, seed=42)

    def expand(self, question: str, language: str, kinds: tuple[str, ...]) -> list[ExpandedQuery]:
        unknown = set(kinds) - set(EXPANSIONS)
        if unknown:
            raise InvalidRequest(f"unknown query expansion {sorted(unknown)}; choose from {list(EXPANSIONS)}")
        queries = [ExpandedQuery(question, "original")]
        if "decompose" in kinds:
            parts = decompose(question, language)
            if len(parts) > 1:
                queries.extend(ExpandedQuery(p, "sub-question") for p in parts)
        if "multi-query" in kinds:
            queries.extend(ExpandedQuery(p, "paraphrase") for p in self._paraphrases(question, language))
        if "hyde" in kinds:
            passage = self._ask(_HYDE, question, language).strip()
            if passage:
                queries.append(ExpandedQuery(passage, "hyde", dense_only=True))
        return queries

    def _ask(self, templates: dict[str, str], question: str, language: str) -> str:
        if self.generator is None:
            raise InvalidRequest("multi-query and hyde expansion need a generator (RAG_LLM_MODEL or RAG_LLM_BASE_URL)")
        prompt = templates.get(language, templates["en"]).format(q=question, n=self.paraphrases)
        return generate(self.generator, [{"role": "user", "content": prompt}], self.params)

    def _paraphrases(self, question: str, language: str) -> list[str]:
        seen = {question.strip().lower()}
        found: list[str] = []
        for line in self._ask(_MULTI_QUERY, question, language).splitlines():
            text = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip()
            if len(text.split()) >= 3 and text.lower() not in seen:
                seen.add(text.lower())
                found.append(text)
        return found[: self.paraphrases]


# The model's output kind for each LLM expansion; with none of that kind, the question was searched as it is.
_PRODUCES = {"multi-query": "paraphrase", "hyde": "hyde"}


def unproductive_expansions(kinds: tuple[str, ...], expanded: list[ExpandedQuery]) -> list[str]:
    """Notes for the LLM expansions asked for whose output gave nothing usable (so nothing was added)."""
    made = {e.kind for e in expanded}
    return [f"{kind} expansion: the model wrote nothing usable; searched with the question alone"
            for kind in kinds if kind in _PRODUCES and _PRODUCES[kind] not in made]
