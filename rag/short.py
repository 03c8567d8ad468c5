"""The short answer: the span of a cited text that answers what the question asks for, put first.

A quoted sentence answers the question but buries the answer: "2. La reclamación se interpondrá en el plazo
de un mes a contar desde el día siguiente…" for "¿En qué plazo se interpone la reclamación?". The short
answer is the span that the question's focus asks for, read from the cited text: "un mes".

Focus (``short_focus``): the answer types of ``rag.focus.FocusCheck`` (amount, quantity, duration, distance,
temperature, date, time, person, email, url) and three of its own: ``reference`` ("¿en qué artículo…?",
"which section…"), ``place`` ("¿dónde…?", "which city…") and ``yes/no`` (a question with no interrogative
word: "¿Se puede…?", "Is it…?"); "¿qué equipo…?", "which player…" ask for a person or body too.

Candidates of that type are found in the quoted sentences (``quote_start..quote_end`` of each citation; the
whole cited text when an answer quotes nothing, as a generated one does) and the one nearest the question's
own terms wins ("plazo de *un mes*" for "¿en qué plazo…?"). Nothing of the asked type, or a question whose
focus is none of these: no short answer.

The span is always ``citations[citation - 1].text[start:end]``, except for yes/no: its text is "Sí"/"No"
("Yes"/"No"), decided by the negation of the quoted sentence that restates the question (most of its terms)
against the question's, and ``start:end`` is that sentence.

    >>> from rag.types import Citation
    >>> text = "2. La reclamación se interpondrá en el plazo de un mes a contar desde el día siguiente."
    >>> short_answer("¿En qué plazo se interpone la reclamación?", "es",
    ...              [Citation("ley.pdf", 3, "c1", 1.0, text, 0, len(text))]).text
    'un mes'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rag.analysis import Analyzer, fold_accents, split_sentences, stopwords
from rag.focus import FocusCheck
from rag.grounding import negated
from rag.types import Citation

YES_NO = "yes/no"
_YES = {"es": "Sí", "en": "Yes"}
_NO = "No"

# --- what the question asks for ---------------------------------------------------------------------------
_INTERROGATIVE = re.compile(r"\b(?:qu[eé]|cu[aá]l(?:es)?|cu[aá]nt[oa]s?|c[oó]mo|d[oó]nde|ad[oó]nde|cu[aá]ndo|"
                            r"qui[eé]n(?:es)?|what|which|who|whom|whose|where|when|why|how)\b", re.IGNORECASE)
# Spanish asks with accents ("qué", "cuál"); unaccented, these are relatives and conjunctions ("que", "cual")
# unless they open the question, as a hurried user writes them.
_SPANISH_ASKING = re.compile(r"\b(?:qué|cuál(?:es)?|cuánt[oa]s?|cómo|dónde|adónde|cuándo|quién(?:es)?)\b|"
                             r"^\W*(?:(?:a|de|en|para|por|desde|hasta|con) )?(?:que|cual|cuant[oa]s?|como|donde|"
                             r"cuando|quien)\b", re.IGNORECASE)
_INTERROGATIVE_EN = re.compile(r"\b(?:what|which|who|whom|whose|where|when|why|how)\b", re.IGNORECASE)
_ENGLISH_YES_NO = re.compile(r"^\W*(?:is|are|was|were|am|can|could|does|do|did|has|have|had|will|would|should|"
                             r"shall|may|might|must|isn't|aren't|wasn't|doesn't|don't|didn't|can't)\b", re.IGNORECASE)
_CHOICE = re.compile(r"\b(?:o|or)\s+(?!no\b|not\b)\w", re.IGNORECASE)
_REFERENCE_QUESTION = re.compile(
    r"\b(?:qu[eé]|cu[aá]l(?:es)?(?: es| son)?(?: el| la| los| las)?) (?:art[ií]culos?|secci[oó]n|secciones|"
    r"cap[ií]tulos?|t[ií]tulos?|apartados?|p[aá]rrafos?|disposici[oó]n|anexos?|leyes|ley|norma|libro)\b|"
    r"\b(?:what|which)(?: is the| are the)? (?:articles?|sections?|chapters?|titles?|paragraphs?|annex|acts?|laws?|"
    r"parts?|clauses?)\b", re.IGNORECASE)
_PLACE_QUESTION = re.compile(
    r"\bd[oó]nde\b|\bwhere\b|\b(?:qu[eé]|cu[aá]l(?:es)?)(?: es| era| fue| son)?(?: el| la| los| las)? "
    r"(?:ciudad|ciudades|pa[ií]s|pa[ií]ses|lugar|provincia|regi[oó]n|capital|continente|isla|r[ií]o|municipio|"
    r"localidad|estado)\b|\b(?:what|which)(?: is the| was the)? (?:city|cities|country|countries|place|province|"
    r"region|state|capital|continent|island|river|town|location)\b|\bin what (?:city|country|place|state)\b",
    re.IGNORECASE)
_BODY_QUESTION = re.compile(
    r"\b(?:qu[eé]|cu[aá]l(?:es)?)(?: es| era| fue)?(?: el| la| los| las)? (?:jugador(?:es)?|equipos?|personas?|"
    r"presidente|rey|reina|[oó]rganos?|organismos?|instituci[oó]n|empresas?|compa[nñ][ií]as?|grupo|club|autor|"
    r"cient[ií]fico|universidad|partido|ministro|ministerio|cadena|emperador|dinast[ií]a|familia|entidad|"
    r"administraci[oó]n|tribunal|juez|autoridad|actor|actriz|escritor[a]?|compositor[a]?|arquitect[oa]|l[ií]der|"
    r"artista|poeta|cantante|banda|fil[oó]sof[oa]|pintor[a]?)\b|"
    r"\b(?:what|which)(?: is the| was the)? (?:players?|teams?|persons?|people|president|king|queen|body|bodies|"
    r"organi[sz]ations?|compan(?:y|ies)|group|club|author|scientist|university|party|minister|ministry|network|"
    r"emperor|dynasty|family|individual|institution|court|judge|authority|actor|actress|writer|composer|"
    r"architect|leader|artist|poet|singer|band|philosopher|painter|pope)\b", re.IGNORECASE)
# A measurement asked for by name: a number with its unit answers it.
_MEASURE_QUESTION = re.compile(
    r"\b(?:qu[eé]|cu[aá]l(?:es)?)(?: es| era| fue| son)?(?: el| la| los| las)? (?:dosis|cantidad|velocidad|peso|"
    r"altura|longitud|superficie|poblaci[oó]n|porcentaje|tama[nñ]o|capacidad|potencia|edad|n[uú]mero|l[ií]mite)\b|"
    r"\bwhat(?: is| was| are| were)?(?: the)? (?:dose|dosage|amount|speed|weight|height|length|area|population|"
    r"percentage|size|capacity|power|age|number|limit)\b", re.IGNORECASE)
_RATE_QUESTION = re.compile(r"\b(?:diari[oa]s?|al d[ií]a|por d[ií]a|mensual(?:es)?|al mes|por mes|anual(?:es)?|"
                            r"al a[nñ]o|por a[nñ]o|semanal(?:es)?|por semana|a la semana|daily|per day|a day|monthly|"
                            r"per month|a month|annual|yearly|per year|a year|weekly|per week|a week)\b", re.IGNORECASE)
_PERCENT_QUESTION = re.compile(r"porcentaje|por ciento|percent|%", re.IGNORECASE)
_PERCENT = re.compile(r"%|por ciento|percent|per cent", re.IGNORECASE)
_BEFORE_YEAR = re.compile(r"\b(?:en|de|del|desde|hasta|año|in|of|since|until|year|by)\s+$", re.IGNORECASE)
# FocusCheck reads a year in "año" inside other words ("anotó"): a date question names a date word.
_DATE_QUESTION = re.compile(r"\b(?:a[nñ]o|fecha|d[ií]a|mes|siglo|d[eé]cada|year|date|month|century|decade)s?\b",
                            re.IGNORECASE)


def short_focus(question: str, language: str) -> str | None:
    """The answer type a short answer must have, or None when the question asks for none of them."""
    if _is_yes_no(question, language):
        return YES_NO
    if _REFERENCE_QUESTION.search(question):
        return "reference"
    kind = FocusCheck.of(question, language).answer_type
    if kind == "date" and not _DATE_QUESTION.search(question):
        kind = None
    if kind in {"email", "url", "amount", "duration", "distance", "temperature", "date", "quantity"}:
        return kind
    if _PLACE_QUESTION.search(question):
        return "place"
    if kind is None and _MEASURE_QUESTION.search(question):
        return "quantity"
    # "who" and "when" ask only as the question's first interrogative word: not in "Doctor Who", nor in
    # "what does it do when…"
    asking = _first_interrogative(question)
    if kind == "person" and asking not in {"quien", "quienes", "who", "whom", "whose"}:
        kind = None
    if kind == "time" and asking not in {"cuando", "when"}:
        kind = None
    if kind == "person" or _BODY_QUESTION.search(question):
        return "person"
    return kind  # "time" or None


def _first_interrogative(question: str) -> str | None:
    """The question's first interrogative word, folded ("quien", "what"); Spanish ones need their accent."""
    found = _SPANISH_ASKING.search(question), _INTERROGATIVE_EN.search(question)
    first = min((m for m in found if m is not None), key=lambda m: m.start(), default=None)
    return fold_accents(first.group().split()[-1]) if first else None


def _asked_noun(question: str) -> str | None:
    """The noun a "¿qué universidad…?" / "which city…?" question asks for, folded: a name that holds it fits."""
    match = _BODY_QUESTION.search(question) or _PLACE_QUESTION.search(question)
    return fold_accents(match.group().split()[-1]) if match else None


def _is_yes_no(question: str, language: str) -> bool:
    """A question with no interrogative word ("¿Se puede…?", "Is it…?"), and no choice ("¿… o …?")."""
    if _CHOICE.search(question):
        return False
    if language == "en":
        return bool(_ENGLISH_YES_NO.search(question)) and not _INTERROGATIVE.search(question)
    return "?" in question and not _SPANISH_ASKING.search(question)


# --- candidate spans --------------------------------------------------------------------------------------
_WORD_NUMBERS = (
    r"cero|uno|una|un|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|trece|catorce|quince|"
    r"diecis[eé]is|diecisiete|dieciocho|diecinueve|veinte|veinti\w+|treinta|cuarenta|cincuenta|sesenta|setenta|"
    r"ochenta|noventa|cien|ciento|doscient[oa]s|trescient[oa]s|cuatrocient[oa]s|quinient[oa]s|seiscient[oa]s|"
    r"setecient[oa]s|ochocient[oa]s|novecient[oa]s|mil|millones|mill[oó]n|medio|media|"
    r"zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|"
    r"million|billion|a dozen|dozen")
# "un mes", "a year": an article counts one before a unit, and never continues a number ("cuatro a propuesta")
_WORDS_NUMBER = rf"(?:{_WORD_NUMBERS})(?:(?:\s+y\s+|\s+and\s+|\s+|-)(?:{_WORD_NUMBERS}))*|an?"
_DIGITS = r"\d{1,3}(?:[.,]\d{3})+(?:,\d+)?|\d{1,3}(?:[ \u00a0]\d{3})+(?![\d])|\d+(?:[.,]\d+)?"
_SCALE = r"(?:mil|millones|mill[oó]n|billones|bill[oó]n|million|billion|trillion|thousand|hundred)"
_TIME_UNIT = (r"segundos?|minutos?|min|horas?|d[ií]as?(?: h[aá]biles| naturales)?|semanas?|meses|mes|a[nñ]os?|"
              r"siglos?|d[eé]cadas?|seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centuries|century")
_CURRENCY = r"euros?|€|d[oó]lares|d[oó]lar|dollars?|pesetas?|libras(?: esterlinas)?|pounds?|USD|EUR|US\$|\$|£"
_DISTANCE_UNIT = (r"sq\.? ?mi|sq\.? ?km|km²|km2|km|kil[oó]metros?(?: cuadrados)?|kilomet(?:er|re)s?|millas?(?: cuadradas| n[aá]uticas)?|"
                  r"(?:square |nautical )?miles?|metros?(?: cuadrados)?|(?:square )?(?:meters?|metres?)|m|pies|feet|"
                  r"ft|yardas?|yards?|cm|mm|hect[aá]reas?|hectares?|acres?")
_TEMPERATURE_UNIT = r"°\s*[CF]?|º\s*C?|grados(?: cent[ií]grados| celsius| fahrenheit)?|degrees(?: celsius| fahrenheit)?"
_OTHER_UNIT = (r"%|por ciento|percent|per cent|mg|g|kg|µg|mcg|ml|l|litros?|liters?|litres?|toneladas?|tons?|tonnes?|"
               r"gramos?|grams?|kilos?|kilogramos?|kilograms?|gigatons?|gigatoneladas?|megatons?|MW|kW|GW|megavatios?|vatios?|watts?|voltios?|volts?|"
               r"veces|times")
_UNIT_KINDS = (("duration", _TIME_UNIT), ("amount", _CURRENCY), ("distance", _DISTANCE_UNIT),
               ("temperature", _TEMPERATURE_UNIT), ("measure", _OTHER_UNIT))
_ANY_UNIT = "|".join(f"(?:{unit})" for _, unit in _UNIT_KINDS)
_UNIT_OF = [(kind, re.compile(rf"(?:{unit})", re.IGNORECASE)) for kind, unit in _UNIT_KINDS]
# "al día", "por semana", "a year": a rate after the unit ("4 g al día", "tres días por semana")
_RATE = (r"(?:\s+(?:al|por|a la|cada|per|a|an|each)\s+(?:d[ií]a|mes|a[nñ]o|semana|hora|day|month|year|week|hour|"
         r"persona|person))")
_QUANTITY = re.compile(
    rf"(?<![\w.,/])(?:(?P<pre>{_CURRENCY})\s?)?(?P<number>{_DIGITS}|{_WORDS_NUMBER})"
    rf"(?:\s*[-–]\s*(?:{_DIGITS})|\s+(?:a|to)\s+(?:{_DIGITS}))?(?:\s+(?:de\s+)?{_SCALE})?"
    rf"(?:\s*(?:de\s+|of\s+)?(?P<unit>{_ANY_UNIT})(?![\w]))?(?P<rate>{_RATE})?(?![\w])", re.IGNORECASE)
_FRACTION = re.compile(r"\b(?:la|una) (?:mitad|tercera parte|cuarta parte)\b|\b(?:el|un) (?:doble|triple|tercio|"
                       r"cuarto)\b|\b(?:half|twice|double|triple|a third|a quarter)\b", re.IGNORECASE)
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b|\b\d{1,2} min(?:utos?)? \d{1,2} s(?:egundos?)?\b", re.IGNORECASE)
_MONTHS = (r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|"
           r"January|February|March|April|May|June|July|August|September|October|November|December")
_YEAR = r"(?:1\d{3}|20\d{2})"
_CENTURY_WORDS = (r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
                  r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty-first")
_DATE = re.compile(
    rf"\b\d{{1,2}}(?:\.?º)? de (?:{_MONTHS})(?: (?:de|del) (?:año )?{_YEAR})?\b|"
    rf"\b(?:{_MONTHS}) \d{{1,2}}(?:st|nd|rd|th)?(?:,? {_YEAR})?\b|"
    rf"\b\d{{1,2}}(?:st|nd|rd|th)? (?:of )?(?:{_MONTHS})(?:,? {_YEAR})?\b|"
    rf"\b(?:(?:{_MONTHS}|primavera|verano|oto[nñ]o|invierno|spring|summer|autumn|fall|winter) (?:de |of )?{_YEAR})\b|"
    rf"\b(?:la )?d[eé]cada de(?: los)? {_YEAR}\b|\b(?:the )?{_YEAR}s\b|\b(?:los )?a[nñ]os \d0\b|"
    rf"\bsiglo [IVXLC]+\b(?: (?:a|d)\. ?C\.)?|\b\d{{1,2}}(?:st|nd|rd|th) century\b|\b(?:{_CENTURY_WORDS}) century\b|"
    rf"\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b|\b{_YEAR}\b", re.IGNORECASE)
_ORDINAL = (r"primer[oa]?|segund[oa]|tercer[oa]?|cuart[oa]|quint[oa]|sext[oa]|s[eé]ptim[oa]|octav[oa]|noven[oa]|"
            r"d[eé]cim[oa]|[uú]nic[oa]|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth")
_REFERENCE = re.compile(
    rf"\b(?:art[ií]culos?|art\.|secci[oó]n|cap[ií]tulo|t[ií]tulo|apartado|p[aá]rrafo|anexo|libro|parte|"
    rf"disposici[oó]n (?:adicional|transitoria|derogatoria|final)|section|article|chapter|title|paragraph|annex|"
    rf"part|clause)\s+(?:\d+(?:\.\d+)*(?:\.?[ºª])?(?: bis| ter)?|[IVXLCDM]+\b|(?:{_ORDINAL})\b)|"
    r"\b(?:Ley(?: Org[aá]nica)?|Real Decreto(?:-ley| Legislativo)?|Decreto|Orden|Act)\s+\d+/\d{4}\b", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s<>()«»\"]+[\w/]|\bwww\.[^\s<>()«»\"]+[\w/]")
# A name: capitalised words, joined by "de", "del", "of"…; a lower-case article before it joins it ("el Rey").
_CAP = r"(?:[A-ZÁÉÍÓÚÑÜ]\.|[A-ZÁÉÍÓÚÑÜ][\wÁÉÍÓÚÑÜáéíóúñü'’-]*)"
_NAME = re.compile(rf"(?:\b(?:el|la|los|las|the) )?{_CAP}(?:(?:\s+(?:de|del|de la|de las|de los|of|of the|da|do|"
                   rf"dos|di|van|von|der|den|du|le|y las|y los|y|and|&)\s+|\s+){_CAP})*")
_LOWER_ARTICLE = re.compile(r"^(?:el|la|los|las|the) ")
_PARAGRAPH_OPENING = re.compile(r"^\s*(?:\d{1,3}\.|[a-zñ]\))\s")
_NOT_NAMES = frozenset(fold_accents(w) for w in (
    "artículo capítulo título sección apartado disposición anexo ley real decreto orden libro parte "
    "article chapter section title annex act part "
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre "
    "lunes martes miércoles jueves viernes sábado domingo "
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday").split())
# Capitalised words that open a sentence without being part of a name ("Durante", "Los", "However").
_FUNCTION_WORDS = frozenset(fold_accents(w) for w in (
    "el la los las lo un una unos unas al del en de por para con sin sobre entre desde hasta hacia tras ante bajo "
    "durante segun y o u e ni pero sino aunque si cuando como donde mientras porque pues ya tambien ademas sin "
    "embargo asi este esta estos estas ese esa esos esas aquel aquella su sus mi mis tu tus nuestro nuestra se le "
    "les ello ella ellos ellas el yo nosotros otro otra otros otras cada todo toda todos todas muchos muchas "
    "algunos algunas varios varias dicho dicha hoy aqui alli despues antes luego entonces "
    "the a an in on at of by for with without from to into about over under after before during since until "
    "and or but nor so yet if when while because as though although however also moreover then thus this that "
    "these those his her its their our my your he she it they we i there here each every all many some several "
    "other another such today").split())
_TOKEN = re.compile(r"\w+", re.UNICODE)
FIRST_QUOTE = 0.25
YES_NO_COVERAGE = 0.6  # of the question's terms in the sentence that answers yes or no
CLAUSE = 3  # a term across a comma, a bracket or a full stop describes the candidate less than one next to it
_CLAUSE_MARK = re.compile(r"[,;:()]|\.\s")
NAMES_ASKED_NOUN = 0.3  # "la Universidad de Newcastle" for "¿qué universidad…?"
ASIDE = 0.5  # "340 miles (550 km)": what a parenthesis repeats is rarely the answer


@dataclass(frozen=True)
class ShortAnswer:
    """The span that answers the question: ``citations[citation - 1].text[start:end] == text`` (1-based
    ``citation``), except for ``kind == "yes/no"``, whose text is "Sí"/"Yes"/"No" and whose span is the quoted
    sentence that decides it."""

    text: str
    citation: int
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class _Asked:
    """What the question says: its words (folded), the noun it asks for ("universidad"), whether a percentage."""

    words: frozenset[str]
    noun: str | None
    percent: bool
    measure: bool  # "¿cuál es la dosis…?": a number with its unit answers it
    rate: bool  # "¿… diaria?", "per year": a number per day or year answers it

    @classmethod
    def of(cls, question: str) -> _Asked:
        noun = _asked_noun(question)
        # "¿qué universidad…?": the noun asked for is no name the question gives ("la Universidad de Newcastle")
        words = {fold_accents(w) for w in _TOKEN.findall(question)} - {noun}
        return cls(frozenset(words), noun, bool(_PERCENT_QUESTION.search(question)),
                   bool(_MEASURE_QUESTION.search(question)), bool(_RATE_QUESTION.search(question)))


@dataclass(frozen=True)
class _Candidate:
    start: int  # in the citation's text
    end: int
    score: float


def short_answer(question: str, language: str, citations: Sequence[Citation],
                 answer_text: str | None = None) -> ShortAnswer | None:
    """The short answer to ``question`` in the cited texts, or None when none of its focus type is there.

    ``answer_text``: the answer that cites them; the sentences it quotes (or, for a generated answer, the
    words it uses) come first."""
    kind = short_focus(question, language)
    if kind is None or not citations:
        return None
    sentences = _sentences(citations, answer_text)
    if not sentences:
        return None
    terms = _question_terms(question, language)
    if kind == YES_NO:
        return _yes_no(question, language, citations, sentences, terms)
    asked = _Asked.of(question)
    generated = _folded_words(answer_text) if answer_text and not any(c.quote_start is not None
                                                                       for c in citations) else None
    best: tuple[float, int, _Candidate] | None = None
    for n, start, end, weight in sentences:
        text = citations[n - 1].text
        for found in _candidates(kind, text, start, end, asked, language):
            score = found.score + _proximity(text, start, end, found, terms, language) + weight
            if text[:found.start].rstrip().endswith("("):
                score -= ASIDE
            if generated is not None and _folded_words(text[found.start:found.end]) <= generated:
                score += 1.0  # the generated answer says it too
            if best is None or score > best[0] + 1e-9:
                best = (score, n, found)
    if best is None:
        return None
    _, n, found = best
    return ShortAnswer(citations[n - 1].text[found.start:found.end], n, found.start, found.end, kind)


def _yes_no(question: str, language: str, citations: Sequence[Citation], sentences: list[tuple[int, int, int, float]],
            terms: frozenset[str]) -> ShortAnswer | None:
    """"Sí"/"No" from the quoted sentence that restates the question best, by their negations; none when no
    sentence holds ``YES_NO_COVERAGE`` of the question's terms ("Los martes son presenciales" says neither yes
    nor no to "¿Se puede teletrabajar los martes?")."""
    if not terms:
        return None
    analyzer = Analyzer(language)
    covered = [(len(terms & set(analyzer.terms(citations[n - 1].text[s:e]))) / len(terms), -i, n, s, e)
               for i, (n, s, e, _) in enumerate(sentences)]
    coverage, _, n, start, end = max(covered)
    if coverage < YES_NO_COVERAGE:
        return None
    sentence = citations[n - 1].text[start:end]
    answer = _NO if negated(sentence) != negated(question) else _YES.get(language, _YES["en"])
    return ShortAnswer(answer, n, start, end, YES_NO)


def _sentences(citations: Sequence[Citation], answer_text: str | None) -> list[tuple[int, int, int, float]]:
    """(citation, start, end, weight) of the sentences to read, the quoted ones in the answer's order: quoted
    sentences when the citations have a quoted span, else every sentence of the cited texts (weighted by how many
    of the answer's words they hold)."""
    order = _citation_order(len(citations), answer_text)
    quoted = [(n, s, e) for n in order for s, e in _sentence_spans(citations[n - 1].text)
              if citations[n - 1].quote_start is not None and citations[n - 1].quote_end is not None
              and s < citations[n - 1].quote_end and e > citations[n - 1].quote_start]
    if quoted:
        lines = [" ".join(line.split()) for line in (answer_text or "").splitlines()]

        def line_of(n: int, s: int, e: int) -> int:
            words = " ".join(citations[n - 1].text[s:e].split())
            return next((i for i, line in enumerate(lines) if words and words in line), len(lines))

        ranked = sorted(((line_of(n, s, e), n, s, e) for n, s, e in quoted), key=lambda q: q[0])  # stable
        first = ranked[0][0]
        several = len({line for line, *_ in ranked}) > 1
        # the sentences of the answer's first quote (its best evidence) weigh more than the runner-up's
        return [(n, s, e, FIRST_QUOTE if several and line == first else 0.0) for line, n, s, e in ranked]
    said = _folded_words(answer_text) if answer_text else set()
    found = []
    for n in order:
        text = citations[n - 1].text
        for s, e in _sentence_spans(text):
            words = _folded_words(text[s:e])
            share = len(words & said) / len(words) if words and said else 0.0
            found.append((n, s, e, share))
    found.sort(key=lambda f: -f[3])
    return found


def _citation_order(count: int, answer_text: str | None) -> list[int]:
    """1-based citation numbers in the order the answer first cites them, then the others."""
    cited = [int(m) for m in re.findall(r"\[(\d+)\]", answer_text or "") if 1 <= int(m) <= count]
    return list(dict.fromkeys([*cited, *range(1, count + 1)]))


@lru_cache(maxsize=1024)
def _sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Where each of ``split_sentences(text)`` lies in ``text`` (it collapses whitespace: matched word by word)."""
    spans = []
    at = 0
    for sentence in split_sentences(text):
        pattern = r"\s+".join(re.escape(w) for w in sentence.split())
        match = re.compile(pattern).search(text, at)
        if match is None:
            continue
        spans.append((match.start(), match.end()))
        at = match.end()
    return tuple(spans)


def _folded_words(text: str) -> set[str]:
    return {fold_accents(w) for w in _TOKEN.findall(text)}


@lru_cache(maxsize=4096)
def _stem(language: str, word: str) -> str | None:
    terms = Analyzer(language).terms(word)
    return terms[0] if terms else None


def _question_terms(question: str, language: str) -> frozenset[str]:
    return frozenset(Analyzer(language).terms(question))


def _proximity(text: str, start: int, end: int, found: _Candidate, terms: frozenset[str], language: str) -> float:
    """Σ 1/(1 + d) over the question's terms in the sentence, d: tokens between the candidate and the term's
    nearest occurrence, and ``CLAUSE`` more for each comma, colon, bracket or full stop between them (terms
    inside the candidate do not count)."""
    if not terms:
        return 0.0
    nearest: dict[str, int] = {}
    tokens = list(_TOKEN.finditer(text, start, end))
    inside = [i for i, t in enumerate(tokens) if t.start() >= found.start and t.end() <= found.end]
    if not inside:
        return 0.0
    first, last = inside[0], inside[-1]
    for i, token in enumerate(tokens):
        if first <= i <= last:
            continue
        stem = _stem(language, token.group())
        if stem in terms:
            gap = first - i if i < first else i - last
            between = text[token.end():found.start] if i < first else text[found.end:token.start()]
            gap += CLAUSE * len(_CLAUSE_MARK.findall(between))
            nearest[stem] = min(gap, nearest.get(stem, gap))
    return sum(1 / (1 + gap) for gap in nearest.values())


def _candidates(kind: str, text: str, start: int, end: int, asked: _Asked, language: str) -> list[_Candidate]:
    """Spans of ``kind`` in ``text[start:end]``, each with a base score (how well it fits the kind)."""
    if kind == "email":
        return [_Candidate(m.start(), m.end(), 1.0) for m in _EMAIL.finditer(text, start, end)]
    if kind == "url":
        return [_Candidate(m.start(), m.end(), 1.0) for m in _URL.finditer(text, start, end)]
    if kind == "reference":
        return [_Candidate(m.start(), m.end(), 1.0) for m in _REFERENCE.finditer(text, start, end)
                if not _folded_words(m.group()) <= asked.words]
    if kind in {"date", "time"}:
        found = [_Candidate(m.start(), m.end(), 1.0 + 0.1 * len(m.group().split()))
                 for m in _DATE.finditer(text, start, end) if not _folded_words(m.group()) <= asked.words]
        return _outermost(found)
    if kind in {"person", "place"}:
        return _names(kind, text, start, end, asked, language)
    return _quantities(kind, text, start, end, asked)


def _outermost(found: list[_Candidate]) -> list[_Candidate]:
    """Candidates that no other candidate contains ("1 de enero de 2025", not "2025" inside it)."""
    return [c for c in found if not any(o is not c and o.start <= c.start and c.end <= o.end
                                        and (o.end - o.start) > (c.end - c.start) for o in found)]


def _masked(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans whose numbers answer nothing: references ("artículo 23", "Ley 39/2015") and the paragraph's number."""
    spans = [(m.start(), m.end()) for m in _REFERENCE.finditer(text, start, end)]
    opening = _PARAGRAPH_OPENING.match(text[start:end])
    if opening:
        spans.append((start, start + opening.end()))
    return spans


def _quantities(kind: str, text: str, start: int, end: int, asked: _Asked) -> list[_Candidate]:
    masked = _masked(text, start, end)
    found = []
    for match in _QUANTITY.finditer(text, start, end):
        number = match.group("number")
        if any(s <= match.start("number") < e for s, e in masked):
            continue
        unit = match.group("unit") or match.group("pre")
        unit_kind = next((k for k, pattern in _UNIT_OF if unit and pattern.fullmatch(unit.strip())), None)
        words = number.lower().split()
        if not unit and (words[0] in {"un", "una", "uno", "one", "a", "an"} and len(words) == 1):
            continue  # an article, not a number
        if kind in {"duration", "amount", "distance", "temperature"} and unit_kind != kind:
            if not (kind == "duration" and _CLOCK.fullmatch(match.group().strip())):
                continue
        span_end = match.end()
        if kind == "quantity" and unit_kind not in {"amount", "distance", "temperature", "measure", "duration"}:
            span_end = match.end("number")  # a count: the number alone ("cuatro", not "cuatro senadores")
        if _folded_words(text[match.start():span_end]) <= asked.words:
            continue  # the question's own number
        score = 1.0
        if kind == "quantity" and re.fullmatch(_YEAR, number) and not unit and _BEFORE_YEAR.search(
                text[max(start, match.start() - 8):match.start()]):
            score -= 1.0  # "en 1998": a year, not a count
        is_percent = bool(unit and _PERCENT.fullmatch(unit.strip()))
        if kind == "quantity" and (asked.percent or is_percent):
            score += 0.5 if asked.percent == is_percent else -0.5  # a share answers "¿qué porcentaje…?" alone
        elif kind == "quantity" and asked.measure:
            score += 0.5 if unit else -0.5
        if asked.rate and match.group("rate"):
            score += 0.5
        found.append(_Candidate(match.start(), span_end, score))
    if kind == "duration":
        found += [_Candidate(m.start(), m.end(), 1.0) for m in _CLOCK.finditer(text, start, end)]
    if kind == "quantity":
        found += [_Candidate(m.start(), m.end(), 0.8) for m in _FRACTION.finditer(text, start, end)]
    return _outermost(found)


def _names(kind: str, text: str, start: int, end: int, asked: _Asked, language: str) -> list[_Candidate]:
    """Capitalised noun phrases ("el Consejo de Ministros", "Kawann Short") that the question does not name."""
    stop = stopwords(language)
    masked = _masked(text, start, end)
    sentence_starts = {s for s, _ in _sentence_spans(text)} | {start}
    found = []
    for match in _NAME.finditer(text, start, end):
        s, e = match.start(), match.end()
        phrase = match.group()
        article = _LOWER_ARTICLE.match(phrase)
        body_start = s + (article.end() if article else 0)
        words = list(_TOKEN.finditer(text, body_start, e))
        # capitalised function words open sentences ("Durante", "Los"): not part of the name
        while words and (fold_accents(words[0].group()) in _FUNCTION_WORDS
                         or fold_accents(words[0].group()) in _NOT_NAMES):
            words.pop(0)
            s = body_start = words[0].start() if words else e
        while words and (fold_accents(words[-1].group()) in _FUNCTION_WORDS
                         or fold_accents(words[-1].group()) in _NOT_NAMES):
            words.pop()
            e = words[-1].end() if words else s
        if not words or any(ms <= body_start < me for ms, me in masked):
            continue
        folded = [fold_accents(w.group()) for w in words]
        if not words[0].group()[:1].isupper():
            continue
        content = [w for w in folded if w not in stop]
        if not content or all(w in asked.words for w in content):
            continue  # the question's own names
        score = 1.0 - 0.5 * sum(w in asked.words for w in content) / len(content)
        if asked.noun is not None and asked.noun in folded:
            score += NAMES_ASKED_NOUN
        at_start = _opens_sentence(text, body_start, sentence_starts)
        if at_start and len(words) == 1:
            score -= 0.5  # a capitalised word that opens a sentence may be no name at all
        before = text[max(start, s - 12):s].lower().split()
        if kind == "place" and before and before[-1] in {"en", "in", "at", "a", "de", "from", "to", "near"}:
            score += 0.3
        if kind == "person" and before and before[-1] in {"por", "by"}:
            score += 0.3
        found.append(_Candidate(s, e, score))
    return found


def _opens_sentence(text: str, at: int, starts: set[int]) -> bool:
    head = text[:at].rstrip()
    return at in starts or not head or head[-1] in ".!?:;\n)" or bool(re.search(r"(?:^|\s)\d{1,3}\.$", head))
