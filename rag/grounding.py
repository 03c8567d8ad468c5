"""Grounding checks and extractive answers, both scored with the embedder.

Support of an answer sentence = its best cosine similarity to any sentence (or table row) of the
sources it may draw on, the AlignScore-style "max over context units" recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.analysis import Analyzer, split_sentences
from rag.embedder import Embedder, similarities
from rag.types import ElementType, ScoredChunk

_CITATION = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A quantity: a number with its unit, when it has one ("20 mg", "72 horas", "3 %", "15 mg/kg"). "20 mg" is
# not supported by a context that only says "20 mg/kg" (for children), nor "15 mg/kg" by "15 g": the whole
# unit, compound units included, must match too.
_UNIT = (r"%|€|°c|mg|g|kg|mcg|µg|ml|l|h|min|mm|cm|m|km|horas?|d[ií]as?|semanas?|meses|mes|a[nñ]os?|hours?|"
         r"days?|weeks?|months?|years?|euros?")
_QUANTITY = re.compile(rf"(\d+(?:[.,]\d+)*)(?:\s*((?:{_UNIT})(?:/(?:{_UNIT}|[a-zñáéíóú]+))*)(?![\w/]))?",
                       re.IGNORECASE)


_ASKS_QUANTITY = re.compile(
    r"\bcu[aá]nt[oa]s?\b|\bqu[eé] (?:edad|cantidad|porcentaje|n[uú]mero)\b|"
    r"\bhow (?:many|much|long|old|often)\b|\bwhat (?:age|percentage|number|amount)\b", re.IGNORECASE)
_NUMBER_WORD = re.compile(
    r"\b(?:dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|trece|catorce|quince|dieci\w+|veint\w+|"
    r"treinta|cuarenta|cincuenta|sesenta|setenta|ochenta|noventa|cien|ciento|doscient\w+|mil|mill[oó]n\w*|"
    r"mitad|tercio|doble|triple|primer\w*|segund\w+|one|two|three|four|five|six|seven|eight|nine|ten|"
    r"eleven|twelve|\w+teen|twenty|thirty|forty|fifty|hundred|thousand|million|half|third|quarter|twice|"
    r"un[ao]?\s+(?:mes|año|día|semana|hora|minuto|vez)|an? (?:month|year|day|week|hour|minute))\b", re.IGNORECASE)


def asks_quantity(question: str) -> bool:
    """"¿Cuántos…?", "how many/much/long…?": the answer must state a number."""
    return bool(_ASKS_QUANTITY.search(question))


def states_quantity(text: str) -> bool:
    return bool(_NUMBER.search(text) or _NUMBER_WORD.search(text))


def quantities(text: str) -> set[str]:
    """Numbers with their units, normalised ("20 mg", "72 horas", "1.5")."""
    return {f"{n} {u.lower()}".strip() for n, u in _QUANTITY.findall(text)}


@dataclass(frozen=True)
class Unit:
    """A quotable piece of a source: a sentence, or a table row with its header."""

    source_index: int  # 1-based, as numbered in the prompt
    text: str


@dataclass(frozen=True)
class SentenceSupport:
    """How well one answer sentence is backed by the sources.

    ``semantic``: best cosine to a source unit; ``lexical``: largest share of the sentence's content
    terms found in one source unit; ``numbers_ok``: every number in the sentence appears in the sources (a
    small model's favourite hallucination is a plausible-looking dose or date).
    """

    sentence: str
    semantic: float
    lexical: float
    numbers_ok: bool
    source_index: int

    def supported(self, min_semantic: float, min_lexical: float) -> bool:
        return self.numbers_ok and self.lexical >= min_lexical and self.semantic >= min_semantic


@dataclass(frozen=True)
class Alignment:
    """One sentence scored against context units; ``unit`` is the index of the most similar one."""

    semantic: float
    lexical: float
    combined: float
    numbers_ok: bool
    unit: int


def claims(answer: str) -> list[str]:
    """The sentences of an answer, citation markers removed: the claims a grounding check scores."""
    return [s for s in split_sentences(_CITATION.sub("", answer)) if len(s.strip()) > 2]


def cited_indices(text: str, n_sources: int) -> list[int]:
    """Distinct [n] references in order of first appearance, limited to existing sources."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        n = int(match.group(1))
        if 1 <= n <= n_sources and n not in seen:
            seen.append(n)
    return seen


def source_units(sources: list[ScoredChunk]) -> list[Unit]:
    """Sentences and table rows of the sources, each once (sentence windows overlap)."""
    units: list[Unit] = []
    seen: set[str] = set()
    for n, hit in enumerate(sources, start=1):
        chunk = hit.chunk
        if chunk.metadata.element_type == ElementType.TABLE:
            # Markdown table: header, |---| separator, rows. Each row is quoted with its header.
            lines = [ln for ln in chunk.text.splitlines() if ln.strip().startswith("|")]
            texts = [f"{lines[0]}\n{lines[1]}\n{row}" for row in lines[2:]] if len(lines) > 2 else [chunk.text]
        else:
            texts = [s for s in split_sentences(chunk.context_text) if len(s) > 2]
        for text in texts:
            if text not in seen:
                seen.add(text)
                units.append(Unit(n, text))
    return units


class Grounder:
    """Scores how well answer sentences are supported and picks quotable sentences for a question."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def relevance(self, question: str, sources: list[ScoredChunk]) -> list[float]:
        """Cosine similarity of the question to each source's text."""
        return [float(v) for v in similarities(self.embedder, question, [s.chunk.text for s in sources])]

    def support(self, answer: str, sources: list[ScoredChunk], language: str) -> list[SentenceSupport]:
        sentences = claims(answer)
        units = source_units(sources)
        alignments = self.align(sentences, [u.text for u in units], language)
        return [SentenceSupport(s, a.semantic, a.lexical, a.numbers_ok, units[a.unit].source_index if units else 0)
                for s, a in zip(sentences, alignments, strict=True)]

    def align(self, sentences: list[str], units: list[str], language: str) -> list[Alignment]:
        """Each sentence against every context unit (AlignScore's "max over context units" recipe).

        ``semantic``: best cosine to a unit; ``lexical``: largest share of the sentence's content
        terms found in one unit (words picked from different sentences do not add up); ``combined``:
        the best unit's mean of the two; ``numbers_ok``: every number also occurs in the context.
        """
        if not sentences or not units:
            return [Alignment(0.0, 0.0, 0.0, False, 0) for _ in sentences]
        analyzer = Analyzer(language)
        unit_terms = [set(analyzer.terms(u)) for u in units]
        context = " ".join(units)
        context_numbers = quantities(context) | set(_NUMBER.findall(context))
        vectors = self.embedder.embed(sentences + units)
        sims = vectors[: len(sentences)] @ vectors[len(sentences):].T
        result = []
        for i, sentence in enumerate(sentences):
            terms = set(analyzer.terms(sentence))
            lexical = np.array([len(terms & ut) / len(terms) if terms else 0.0 for ut in unit_terms])
            combined = (sims[i] + lexical) / 2
            numbers_ok = all(q in context_numbers for q in quantities(sentence))
            result.append(Alignment(float(sims[i].max()), float(lexical.max()), float(combined.max()), numbers_ok,
                                    int(sims[i].argmax())))
        return result

    def extract(self, question: str, sources: list[ScoredChunk], language: str,
                max_units: int = 2) -> list[tuple[Unit, float]]:
        """The source units that best answer the question, best first.

        Score = mean of the cosine similarity to the question and the share of the question's
        content terms the unit contains (the embedder alone confuses neighbouring table rows); 0 for a
        unit without any number when the question asks for a quantity.
        """
        units = source_units(sources)
        if not units:
            return []
        vectors = self.embedder.embed([question] + [u.text for u in units])
        semantic = vectors[1:] @ vectors[0]
        analyzer = Analyzer(language)
        wanted = set(analyzer.terms(question))
        lexical = np.array([len(wanted & set(analyzer.terms(u.text))) / len(wanted) if wanted else 0.0
                            for u in units])
        scores = (semantic + lexical) / 2
        if asks_quantity(question):  # answer-type check: a unit without any number cannot answer it
            scores = np.where([states_quantity(u.text) for u in units], scores, 0.0)
        order = np.argsort(-scores, kind="stable")[:max_units]
        return [(units[i], float(scores[i])) for i in order]


def renumber_citations(text: str, cited: list[int]) -> str:
    """Rewrite [n] (a prompt source number) as its 1-based position in ``cited``; drop others."""
    position = {n: i for i, n in enumerate(cited, start=1)}

    def sub(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[{position[n]}]" if n in position else ""

    return _CITATION.sub(sub, text)
