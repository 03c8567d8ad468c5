"""Grounding checks and extractive answers, both scored with the embedder.

Support of an answer sentence = its best cosine similarity to any sentence (or table row) of the
sources it may draw on, the AlignScore-style "max over context units" recipe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from rag.analysis import Analyzer, fold_accents, split_sentences
from rag.embedder import Embedder, similarities
from rag.enumeration import bare, family, item_order, lead_ins, lead_of, with_lead
from rag.focus import NUMBER, NUMBER_WORD, QUANTITATIVE, FocusCheck
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


def asks_quantity(question: str) -> bool:
    """"¿Cuántos…?", "how many/much/long…?": the answer must state a number."""
    return FocusCheck.of(question, "es").answer_type in QUANTITATIVE


def states_quantity(text: str) -> bool:
    return bool(NUMBER.search(text) or NUMBER_WORD.search(text))


def quantities(text: str) -> set[str]:
    """Numbers with their units, normalised ("20 mg", "72 horas", "1.5")."""
    return {f"{n} {u.lower()}".strip() for n, u in _QUANTITY.findall(text)}


@dataclass(frozen=True)
class Unit:
    """A quotable piece of a source: a sentence, or a table row with its header."""

    source_index: int  # 1-based, as numbered in the prompt
    text: str
    lead: str = ""  # a list item's lead-in ("En la sección II se publicarán:"), scored and quoted with it
    adjacent: bool = True  # the item follows its lead-in in the source (else "[…]" stands between them)

    @property
    def scored(self) -> str:
        """What the question is scored against: the item with its lead-in."""
        return f"{self.lead} {self.text}" if self.lead else self.text

    @property
    def quoted(self) -> str:
        """How the answer quotes it: "En la sección II se publicarán: […] b) Oposiciones y concursos."."""
        return with_lead(self.lead, self.text.strip(), self.adjacent) if self.lead else self.text.strip()

    @property
    def is_table_row(self) -> bool:
        """A table row quoted with its header (``source_units``)."""
        return "\n|" in self.text


@dataclass(frozen=True)
class UnitScores:
    """One question against each unit of its sources (arrays aligned with the units).

    ``score``: the rule score (mean of ``semantic`` and ``lexical``, times the row and ``focus`` factors);
    ``semantic``: the judge embedder's cosine; ``lexical``: idf-weighted share of the question's terms in the
    unit; ``local_lexical``: the same share weighted by how few of these units hold each term; ``ordered``:
    share of the question's terms in the unit in the question's order; ``focus``: the focus factor;
    ``context_lexical``: idf-weighted share of the question's terms found in any of the units (one value for all).
    """

    score: np.ndarray
    semantic: np.ndarray
    lexical: np.ndarray
    local_lexical: np.ndarray
    ordered: np.ndarray
    focus: np.ndarray
    context_lexical: np.ndarray

    def subset(self, keep: np.ndarray) -> UnitScores:
        """The scores of the units at positions ``keep``, in that order."""
        return UnitScores(*(getattr(self, f.name)[keep] for f in fields(self)))


@dataclass(frozen=True)
class SentenceSupport:
    """How well one answer sentence is backed by the sources.

    ``semantic``: best cosine to a source unit; ``lexical``: largest share of the sentence's content
    terms found in one source unit; ``ordered``: the share found in that unit *in the same order*
    (longest common subsequence of content terms), which word salad built from a source's words fails;
    ``numbers_ok``: every number (with its unit) in the sentence appears in the unit it aligns with (a
    small model's favourite hallucination is a plausible-looking dose or date, or a number moved from
    another sentence); ``negation_ok``: the sentence and that unit agree on negation.
    """

    sentence: str
    semantic: float
    lexical: float
    numbers_ok: bool
    source_index: int
    ordered: float = 1.0
    negation_ok: bool = True
    names_ok: bool = True

    def supported(self, min_semantic: float, min_lexical: float, min_ordered: float = 0.0) -> bool:
        return (self.numbers_ok and self.negation_ok and self.names_ok and self.lexical >= min_lexical
                and self.ordered >= min_ordered and self.semantic >= min_semantic)


@dataclass(frozen=True)
class Alignment:
    """One sentence scored against context units; ``unit`` is the index of the best aligned one."""

    semantic: float
    lexical: float
    combined: float
    numbers_ok: bool
    unit: int
    ordered: float = 1.0
    negation_ok: bool = True
    names_ok: bool = True


_NEGATION = re.compile(r"\b(?:no|not|never|nunca|jam[aá]s|ni|tampoco|ning[uú]n\w*|nadie|nada|none|nobody|nothing|"
                       r"neither|nor|cannot|without|sin)\b|n't\b", re.IGNORECASE)


ROW_WITHOUT_ENTITY = 0.5
IDF_FLOOR = 0.25
# Alignment penalties: a number or name of the claim missing from its best unit but present elsewhere in the
# context (moved between sentences), or missing from the context (made up), or a negation that disagrees.
ELSEWHERE = 0.75
MISSING = 0.5
_NAME = re.compile(r"(?<!^)(?<![.!?¿¡:]\s)\b[A-ZÁÉÍÓÚÑ][\wáéíóúñü]{2,}")


def names(text: str) -> set[str]:
    """Capitalised words that do not open the sentence (names: "Madrid", "Annie Ernaux"), folded."""
    return {fold_accents(n.lower()) for n in _NAME.findall(text.strip())}


def negated(text: str) -> bool:
    """Odd number of negation words: "no", "not", "nunca", "sin", "cannot"…"""
    return len(_NEGATION.findall(text)) % 2 == 1


def ordered_coverage(terms: list[str], unit_terms: list[str]) -> float:
    """Share of ``terms`` found in ``unit_terms`` in the same order (longest common subsequence)."""
    if not terms or not unit_terms:
        return 0.0
    previous = [0] * (len(unit_terms) + 1)
    for term in terms:
        current = [0]
        for j, other in enumerate(unit_terms, start=1):
            current.append(previous[j - 1] + 1 if term == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1] / len(terms)


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
            found = [Unit(n, text) for text in texts]
        else:
            found = _sentence_units(n, chunk)
        for unit in found:
            if unit.text not in seen:
                seen.add(unit.text)
                units.append(unit)
    return units


def _sentence_units(n: int, chunk) -> list[Unit]:
    """The sentences of a chunk's window, each list item with its lead-in: found in the window, else (for the
    chunk's own sentence) the one ingestion found across the document."""
    sentences = [s for s in split_sentences(chunk.context_text) if len(s) > 2]
    leads = lead_ins(sentences)
    own = " ".join(chunk.text.split())
    units = []
    for i, (sentence, lead) in enumerate(zip(sentences, leads, strict=True)):
        text = bare(sentence)  # a far lead-in that opens the window
        if lead is None and chunk.metadata.lead_in and " ".join(text.split()) == own:
            lead = chunk.metadata.lead_in
        if not lead:
            units.append(Unit(n, text))
            continue
        adjacent = i > 0 and bare(sentences[i - 1]) == lead
        units.append(Unit(n, text, lead, adjacent))
    return units


def list_items(best: Unit, units: list[Unit]) -> list[Unit]:
    """The list ``best`` belongs to, for a question that asks for a list: its lead-in (when it is a unit of the
    sources) and every item of it found in the sources, in the list's order. Empty when ``best`` is neither an
    item nor a lead-in, or no item of its list was found."""
    lead = best.lead or lead_of(best.text)
    if not lead:
        return []
    # Marked items only: an item's further sentences ("En todo caso, …") have no place of their own in the order.
    items = sorted((u for u in units if u.lead == lead and family(u.text, True)), key=lambda u: item_order(u.text))
    if not items:
        return []
    # The lead-in itself, with the list's first item when the sentence holds both ("…casos: a) Quince días…").
    heads = sorted((u for u in units if not u.lead and u.text.startswith(lead)), key=lambda u: -len(u.text))
    return heads[:1] + items


class Grounder:
    """Scores how well answer sentences are supported and picks quotable sentences for a question."""

    def __init__(self, embedder: Embedder, idf: Callable[[list[str]], dict[str, float]] | None = None) -> None:
        self.embedder = embedder
        self.idf = idf  # term weights for the question's coverage (rare terms say what is asked)

    def relevance(self, question: str, sources: list[ScoredChunk]) -> list[float]:
        """Cosine similarity of the question to each source's text."""
        return [float(v) for v in similarities(self.embedder, question, [s.chunk.text for s in sources])]

    def support(self, answer: str, sources: list[ScoredChunk], language: str) -> list[SentenceSupport]:
        sentences = claims(answer)
        units = source_units(sources)
        alignments = self.align(sentences, [u.text for u in units], language)
        return [SentenceSupport(s, a.semantic, a.lexical, a.numbers_ok, units[a.unit].source_index if units else 0,
                                a.ordered, a.negation_ok, a.names_ok)
                for s, a in zip(sentences, alignments, strict=True)]

    def align(self, sentences: list[str], units: list[str], language: str) -> list[Alignment]:
        """Each sentence against every context unit (AlignScore's "max over context units" recipe).

        Per unit: cosine of the embeddings, ``lexical`` = share of the sentence's content terms in the
        unit, ``ordered`` = share in the same order (LCS); against the unit, every number with its unit
        must occur (``numbers_ok``), every name too (``names_ok``) and negation must agree (``negation_ok``).
        A unit's score is ``(cosine + ordered) / 2``, halved for each failed check, and the sentence keeps
        its best unit's (``combined``; the others describe that unit): a claim that splices two sources, shuffles
        a source's words, moves a number or a name between sentences or drops a "no" scores low although
        its words all occur in the context.
        """
        if not sentences or not units:
            return [Alignment(0.0, 0.0, 0.0, False, 0, 0.0, False) for _ in sentences]
        analyzer = Analyzer(language)
        unit_terms = [analyzer.terms(u) for u in units]
        unit_sets = [set(t) for t in unit_terms]
        unit_numbers = [quantities(u) | set(_NUMBER.findall(u)) for u in units]
        unit_negated = [negated(u) for u in units]
        unit_words = [set(re.findall(r"\w+", fold_accents(u.lower()))) for u in units]
        all_numbers, all_words = set().union(*unit_numbers), set().union(*unit_words)
        vectors = self.embedder.embed(sentences + units)
        sims = vectors[: len(sentences)] @ vectors[len(sentences):].T
        result = []
        for i, sentence in enumerate(sentences):
            terms = analyzer.terms(sentence)
            wanted = set(terms)
            lexical = np.array([len(wanted & ut) / len(wanted) if wanted else 0.0 for ut in unit_sets])
            ordered = np.array([ordered_coverage(terms, ut) if lexical[j] > 0 else 0.0
                                for j, ut in enumerate(unit_terms)])
            base = (sims[i] + ordered) / 2
            wanted_numbers, wanted_names, negative = quantities(sentence), names(sentence), negated(sentence)
            checks = [(all(q in unit_numbers[j] for q in wanted_numbers), negative == unit_negated[j],
                       wanted_names <= unit_words[j]) for j in range(len(units))]
            # A number or name found elsewhere in the context costs less than one found nowhere.
            elsewhere = (all(q in all_numbers for q in wanted_numbers), wanted_names <= all_words)
            penalty = np.array([(1.0 if ok[0] else ELSEWHERE if elsewhere[0] else MISSING) * (1.0 if ok[1] else MISSING)
                                * (1.0 if ok[2] else ELSEWHERE if elsewhere[1] else MISSING) for ok in checks])
            scores = base * penalty
            best = int(scores.argmax())
            numbers_ok, negation_ok, names_ok = checks[best]
            combined = scores[best]
            result.append(Alignment(float(sims[i][best]), float(lexical[best]), float(combined), numbers_ok, best,
                                    float(ordered[best]), negation_ok, names_ok))
        return result

    def unit_scores(self, question: str, sources: list[ScoredChunk], language: str,
                    units: list[Unit]) -> UnitScores:
        """Every unit scored for the question, the parts kept (``UnitScores``).

        ``score`` = mean of the cosine similarity to the question and the share of the question's content
        terms the unit contains (the embedder alone confuses neighbouring table rows), times the unit's focus
        factor (``rag.focus``): 0 for a unit that cannot hold what is asked (no number for "¿cuántos…?", no
        amount in euros, no date, no e-mail address), a fraction for each qualifier of the question ("primer",
        "2015") that neither the unit nor its source names; above 1 for a unit that holds a specific answer and
        the question's rarest term.
        """
        vectors = self.embedder.embed([question] + [u.scored for u in units])
        semantic = vectors[1:] @ vectors[0]
        analyzer = Analyzer(language)
        question_terms = analyzer.terms(question)
        wanted = set(question_terms)
        # idf weights, floored: in a small index every term is in half the chunks and BM25's idf is 0 for all
        weights = {t: max(w, 0.0) + IDF_FLOOR for t, w in
                   (self.idf(sorted(wanted)) if self.idf and wanted else {t: 1.0 for t in wanted}).items()}
        total = sum(weights.values())
        unit_lists = [analyzer.terms(u.scored) for u in units]
        unit_terms = [set(terms) for terms in unit_lists]
        lexical = np.array([sum(weights[t] for t in wanted & terms) / total if total > 0 else 0.0
                            for terms in unit_terms])
        # The same coverage weighted by how few of these units hold each term: the article's topic words are
        # in every unit, what the question asks about is in few (a near miss lacks it everywhere).
        local = {t: float(np.log((len(units) + 1) / (sum(t in terms for terms in unit_terms) + 0.5))) for t in wanted}
        local_total = sum(local.values())
        local_lexical = np.array([sum(local[t] for t in wanted & terms) / local_total if local_total > 0 else 0.0
                                  for terms in unit_terms])
        ordered = np.array([ordered_coverage(question_terms, terms) for terms in unit_lists])
        # What the sources hold of the question at all: a near miss keeps the topic words, not what is asked.
        covered = wanted & set().union(*unit_terms)
        context_lexical = np.full(len(units), sum(weights[t] for t in covered) / total if total > 0 else 0.0)
        scores = (semantic + lexical) / 2
        # A table row answers for the entity it names: a row none of whose own cells holds a question term
        # (only its header matches) is worth half.
        rows = [u.text.rsplit("\n", 1)[1] if u.is_table_row else None for u in units]
        scores = scores * np.array([1.0 if row is None or wanted & set(analyzer.terms(row)) else ROW_WITHOUT_ENTITY
                                    for row in rows])
        focus = FocusCheck.of(question, language)
        # A unit that holds the specific answer weighs more only when it is about the question's rarest term
        # (the warranty's duration, not any duration of the law).
        rarest = max(weights, key=lambda t: weights[t]) if weights else None
        factors = [focus.factor(u.scored, _about(sources[u.source_index - 1])) for u in units]
        factors = np.array([f if f <= 1.0 or rarest in terms else 1.0
                            for f, terms in zip(factors, unit_terms, strict=True)])
        return UnitScores(scores * factors, semantic, lexical, local_lexical, ordered, factors, context_lexical)

    def extract(self, question: str, sources: list[ScoredChunk], language: str,
                max_units: int = 2, units: list[Unit] | None = None) -> list[tuple[Unit, float]]:
        """The source units that best answer the question by ``unit_scores``' rule score, best first.
        ``units``: the sources' units when the caller already split them (``source_units``)."""
        units = source_units(sources) if units is None else units
        if not units:
            return []
        scores = self.unit_scores(question, sources, language, units).score
        order = np.argsort(-scores, kind="stable")[:max_units]
        return [(units[i], float(scores[i])) for i in order]


def _about(hit: ScoredChunk) -> str:
    """What a source is about beyond its text: file name and section (a question's "Ley 39/2015")."""
    meta = hit.chunk.metadata
    return f"{meta.source} {meta.section or ''}"


def renumber_citations(text: str, cited: list[int]) -> str:
    """Rewrite [n] (a prompt source number) as its 1-based position in ``cited``; drop others."""
    position = {n: i for i, n in enumerate(cited, start=1)}

    def sub(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[{position[n]}]" if n in position else ""

    return _CITATION.sub(sub, text)
