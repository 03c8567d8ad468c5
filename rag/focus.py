"""What a question asks for (its focus), and whether a piece of evidence holds it.

A near-miss question is on the documents' topic but asks for something they do not state: an amount
in euros, a date, a head count, a first office holder, an e-mail address. Topic words alone cannot
tell it from an answerable one; its *focus* can. The focus is

- an answer type, read from the question's wording (es/en): ``amount`` (money), ``quantity`` (a
  count, with the counted noun when there is one: "¿cuántos *senadores*…?"), ``duration``, ``distance``,
  ``temperature``, ``date``, ``time`` ("¿cuándo…?", weaker), ``person`` ("¿quién…?"), ``email``, ``url``;
- qualifiers that the evidence must repeat: numbers and years in the question ("de 2015"), ordinals
  ("primer", "first", "último", "last").

``FocusCheck.factor(text)`` is 1.0 when a unit of evidence can hold the focus and smaller when it
cannot (0 for a missing hard type such as an e-mail address; a fraction for softer ones), so that the
evidence gate abstains on near misses; it is ``FOCUS_FOUND`` (1.3) when the unit holds a specific
answer (a duration, an amount, a temperature, a count next to its noun), which a paraphrased question
needs ("2 years" answers "how long does the warranty last?").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.analysis import PARAGRAPH_NUMBER, Analyzer, fold_accents

NUMBER = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")
_NUMBER_WORDS = (
    r"un[ao]?\s+(?:mes|año|día|semana|hora|minuto|vez)|an? (?:month|year|day|week|hour|minute)|"
    r"dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|trece|catorce|quince|dieci\w+|"
    r"veint\w*|treinta|cuarenta|cincuenta|sesenta|setenta|ochenta|noventa|cien|ciento|\w+cientos?|mil|"
    r"mill[oó]n\w*|mitad|tercio|tercera|cuarta|doble|triple|ambos|ambas|"
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|twenty|thirty|forty|fifty|"
    r"sixty|seventy|eighty|ninety|hundred|thousand|million|billion|half|third|quarter|twice|both|dozen")
NUMBER_WORD = re.compile(rf"\b(?:{_NUMBER_WORDS})\b", re.IGNORECASE)
_MONTHS = (r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|"
           r"january|february|march|april|may|june|july|august|september|october|november|december")
_DATE = re.compile(rf"\b(?:1\d{{3}}|20\d{{2}}|{_MONTHS}|siglo|century|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})\b",
                   re.IGNORECASE)
_TIMEISH = re.compile(
    rf"{_DATE.pattern}|\b(?:plazo|d[ií]as?|mes(?:es)?|a[nñ]os?|semanas?|horas?|antes|despu[eé]s|tras|desde|hasta|"
    r"durante|transcurrid\w+|cuando|momento|vez|veces|hoy|years?|months?|days?|weeks?|hours?|before|after|until|"
    r"since|during|when|once|upon|era|decade|d[eé]cada|age|edad)\b", re.IGNORECASE)
_CURRENCY = re.compile(r"€|\$|£|\beuros?\b|\bd[oó]lar(?:es)?\b|\bdollars?\b|\bpesetas?\b|\bpounds?\b|\bUSD\b|\bEUR\b",
                       re.IGNORECASE)
_TIME_UNIT = re.compile(r"\b(?:segundos?|minutos?|horas?|d[ií]as?|semanas?|mes(?:es)?|a[nñ]os?|siglos?|seconds?|"
                        r"minutes?|hours?|days?|weeks?|months?|years?|centuries|century|decades?|d[eé]cadas?)\b",
                        re.IGNORECASE)
_DISTANCE_UNIT = re.compile(r"\b(?:km|kil[oó]metros?|kilometers?|kilometres?|millas?|miles?|metros?|meters?|"
                            r"metres?|m|pies|feet|ft)\b", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_URL = re.compile(r"https?://|\bwww\.|\b[\w-]+\.(?:es|com|org|net|gob|gov|eu)\b", re.IGNORECASE)
# "artículo 16", "Ley 39/2015", "apartado 3": numbers that point elsewhere and answer nothing.
_REFERENCE = re.compile(r"\b(?:art[ií]culos?|art\.|apartados?|leyes|ley|real decreto|decreto|disposici[oó]n|"
                        r"cap[ií]tulos?|t[ií]tulos?|p[aá]ginas?|secci[oó]n|sections?|articles?|chapters?|pages?)"
                        r"\s+\d+[\w./-]*", re.IGNORECASE)
# "2. Cuando…", "a) Los…": the number or letter of a statute's paragraph, which opens its sentence and answers
# no "how many"
_OPENING_PARAGRAPH_NUMBER = re.compile(r"^\s*" + PARAGRAPH_NUMBER.pattern)
_CAPITALISED = re.compile(r"(?<![.!?¿¡]\s)(?<!^)\b[A-ZÁÉÍÓÚÑ][\wáéíóúñü]+")

# Question wording -> answer type; the first match wins (most specific first).
_TYPES: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"correo electr[oó]nico|\be-?mail\b|direcci[oó]n de correo", re.IGNORECASE)),
    ("url", re.compile(r"p[aá]gina web|sitio web|\bweb ?site\b|\burl\b|web page|direcci[oó]n web", re.IGNORECASE)),
    ("amount", re.compile(r"\beuros?\b|€|\bdinero\b|\bimporte\b|\bsueldo\b|\bsalario\b|\bcobra\w*|\bcuesta\b|"
                          r"\bcoste\b|\bprecio\b|\bhow much money\b|\bsalary\b|\bcost\b|\bprice\b|\bdollars?\b|"
                          r"\bfee\b|\btasa\b", re.IGNORECASE)),
    # a deadline asked for ("¿qué plazo hay para…?", "what is the time limit…") is a duration too; "los plazos"
    # named as a topic ("¿qué días se excluyen cuando los plazos se señalan por días?") is not
    ("duration", re.compile(r"cu[aá]nto tiempo|cu[aá]nto dura|cu[aá]ntos (?:a[nñ]os|d[ií]as|meses|horas|semanas)|"
                            r"\b(?:qu[eé]|cu[aá]l es el|cu[aá]les son los|en qu[eé]|de qu[eé]) plazos?\b|"
                            r"how long|how many (?:years|days|months|hours|weeks)|how much time|"
                            r"\bwhat(?: is| are)? the (?:deadline|time limit|time-limit|period)s?\b|"
                            r"\bwhat (?:deadline|time limit)|\bwithin what (?:period|time)", re.IGNORECASE)),
    ("distance", re.compile(r"a qu[eé] distancia|qu[eé] distancia|how far|what distance", re.IGNORECASE)),
    ("temperature", re.compile(r"qu[eé] temperatura|\bwhat temperature|how (?:hot|cold)", re.IGNORECASE)),
    ("date", re.compile(r"en qu[eé] (?:a[nñ]o|fecha|d[ií]a|mes|siglo|d[eé]cada)|qu[eé] (?:a[nñ]o|fecha)|"
                        r"\bwhat (?:year|date|month|century|decade)|\bwhich (?:year|date|century)|\bin what year",
                        re.IGNORECASE)),
    ("quantity", re.compile(r"\bcu[aá]nt[oa]s?\b|qu[eé] edad\b|\bwhat age\b|\bqu[eé] (?:cantidad|porcentaje|n[uú]mero)\b|"
                            r"\bhow (?:many|much|old|often)\b|\bwhat (?:percentage|number|amount)\b",
                            re.IGNORECASE)),
    # "cuándo" asks for a time; "cuando" without its accent is the conjunction unless it opens the question
    ("time", re.compile(r"\bcuándo\b|^\W*cuando\b|\bwhen\b", re.IGNORECASE)),
    ("person", re.compile(r"\bqui[eé]n(?:es)?\b|\bwho\b|\bwhom\b", re.IGNORECASE)),
]
_COUNTED = re.compile(r"\b(?:cu[aá]nt[oa]s|how many)\s+([\wáéíóúñü]+)", re.IGNORECASE)
# "el primer presidente", "the last episode"; not the verb ("how long does it last?")
_ORDINAL = re.compile(r"\b(?:primer[oa]?|[uú]ltim[oa]s?)\b|(?<=\bthe )(?:first|last)\b", re.IGNORECASE)
# Answer types that are numbers.
QUANTITATIVE = frozenset({"quantity", "duration", "amount", "distance"})
# Penalties for evidence that lacks the focus: hard types cannot be answered without it.
_MISSING_TYPE = {"email": 0.0, "url": 0.0, "amount": 0.0, "quantity": 0.0, "duration": 0.0, "distance": 0.0,
                 "temperature": 0.0, "date": 0.0, "time": 0.6, "person": 0.75}
# Evidence that holds a specific answer type (a duration, an amount, a count next to its noun…) answers the
# question even when it words the rest differently ("2 years" for "how long does it last?"): it weighs more.
FOCUS_FOUND = 1.3
_SPECIFIC = frozenset({"email", "url", "amount", "duration", "distance", "temperature"})
_TEMPERATURE = re.compile(r"\d\s*(?:°|º|ºC|°C|grados|degrees|\bC\b|\bF\b)", re.IGNORECASE)
MISSING_QUALIFIER = 0.5
# Words and numbers ("1.500", "3,5") as the focus checks count tokens.
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[\wáéíóúñü]+")
_YEAR_RANGE = re.compile(r"\b(1\d|20)(\d\d)\s*[-–—/]\s*(\d\d)\b")


def _number_near(stem_hits: list[int], tokens: list[str], window: int = 4) -> bool:
    """A number (digits or words) within ``window`` tokens of one of the counted noun's positions."""
    for at in stem_hits:
        for j in range(max(0, at - window), min(len(tokens), at + window + 1)):
            if NUMBER.fullmatch(tokens[j]) or NUMBER_WORD.fullmatch(tokens[j]):
                return True
    return False


def _counts_a_time_unit(text: str, window: int = 3) -> bool:
    """A time unit with a number in the ``window`` tokens before it ("un mes", "tres meses", "72 horas",
    "for two weeks"): not a unit and a number anywhere ("a partir del día siguiente … 2.", where "2." numbers
    the next paragraph)."""
    tokens = _TOKEN.findall(text)
    for at, token in enumerate(tokens):
        if _TIME_UNIT.fullmatch(token):
            before = tokens[max(0, at - window):at]
            if any(NUMBER.fullmatch(t) for t in before) or NUMBER_WORD.search(" ".join(before + [token])):
                return True
    return False


@dataclass(frozen=True)
class FocusCheck:
    """The focus of one question; ``factor(text)`` scores a unit of evidence against it."""

    answer_type: str | None
    counted: str | None  # the stem of the counted noun ("senador"), for quantity questions
    qualifiers: tuple[str, ...]  # numbers and ordinal stems the evidence must repeat
    language: str

    @classmethod
    def of(cls, question: str, language: str) -> FocusCheck:
        answer_type = next((name for name, pattern in _TYPES if pattern.search(question)), None)
        analyzer = Analyzer(language)
        counted = None
        if answer_type == "quantity" and (match := _COUNTED.search(question)):
            stems = analyzer.terms(match.group(1))
            counted = stems[0] if stems else None
        qualifiers = list(NUMBER.findall(question))
        # ordinals as folded prefixes ("primer" covers primero/primera, "ultim" último/última)
        qualifiers += [fold_accents(word.lower()).rstrip("oa") or word.lower() for word in _ORDINAL.findall(question)]
        return cls(answer_type, counted, tuple(dict.fromkeys(qualifiers)), language)

    def describe(self) -> dict[str, object]:
        """For the trace: what the evidence had to hold."""
        return {"answer_type": self.answer_type, "counted": self.counted, "qualifiers": list(self.qualifiers)}

    def has_type(self, text: str) -> bool:
        kind = self.answer_type
        if kind is None:
            return True
        text = _REFERENCE.sub(" ", _OPENING_PARAGRAPH_NUMBER.sub("", text))
        if kind == "email":
            return bool(_EMAIL.search(text))
        if kind == "url":
            return bool(_URL.search(text))
        if kind == "amount":
            return bool(_CURRENCY.search(text)) and bool(NUMBER.search(text) or NUMBER_WORD.search(text))
        if kind == "date":
            return bool(_DATE.search(text))
        if kind == "time":
            return bool(_TIMEISH.search(text))
        if kind == "duration":
            return _counts_a_time_unit(text)
        if kind == "distance":
            return bool(_DISTANCE_UNIT.search(text)) and bool(NUMBER.search(text))
        if kind == "person":
            return bool(_CAPITALISED.search(text))
        if kind == "temperature":
            return bool(_TEMPERATURE.search(text))
        # quantity: a number, next to the counted noun when the question names one
        if not (NUMBER.search(text) or NUMBER_WORD.search(text)):
            return False
        if self.counted is None:
            return True
        tokens, hits = self._counted_positions(text)
        return not hits or _number_near(hits, tokens)

    def missing_qualifiers(self, text: str, context: str = "") -> list[str]:
        """Qualifiers found neither in ``text`` nor in ``context`` (the source's name and section)."""
        if not self.qualifiers:
            return []
        text = f"{text} {context}"
        # "1620-21" names 1621 too (and "1654-57" 1657): the end of a year range written short
        text += "".join(f" {m.group(1)}{m.group(3)}" for m in _YEAR_RANGE.finditer(text))
        folded = fold_accents(text.lower())
        # canonical terms: a number the question writes in digits counts when the source writes it in words
        stems = set(Analyzer(self.language, canonical=True).terms(text))
        return [q for q in self.qualifiers if q not in stems and q.lower() not in folded]

    def factor(self, text: str, context: str = "") -> float:
        """1.0 when ``text`` can hold the focus; less (down to 0) for each part it lacks; ``FOCUS_FOUND`` when
        it holds a specific answer type (or a count next to the counted noun) and every qualifier."""
        missing = len(self.missing_qualifiers(text, context))
        if not self.has_type(text):
            return _MISSING_TYPE[self.answer_type or ""] * MISSING_QUALIFIER ** missing
        specific = self.answer_type in _SPECIFIC or (self.answer_type == "quantity" and self.counted is not None
                                                     and bool(self._counted_positions(text)[1]))
        return (FOCUS_FOUND if specific and not missing else 1.0) * MISSING_QUALIFIER ** missing

    def _counted_positions(self, text: str) -> tuple[list[str], list[int]]:
        """The text's tokens, and where the counted noun ("senadores" for "senador") stands among them."""
        analyzer = Analyzer(self.language)
        tokens = _TOKEN.findall(text)
        hits = [i for i, tok in enumerate(tokens) if (stems := analyzer.terms(tok)) and stems[0] == self.counted]
        return tokens, hits
