"""Which document says it: a document's title, for a question that asks which law, rule or document holds it.

"¿Qué ley regula el silencio administrativo?", "¿Qué documento de la Universidad recoge los valores…?", "Which
regulation sets the deadline?": the sentence that answers is an article of the document, and the answer is the
document itself. The product quotes that sentence as for any question and puts the document's title first,
quoted from the document's first pages (a cited source of its own, with its page), so that the name asked for is
in the answer and in a cited text.

The title is the first sentence of the document's opening (its first ``TITLE_SENTENCES`` chunks) that names a kind of document ("Ley 39/2015, de 1 de
octubre, del Procedimiento Administrativo Común…", "Código Ético General de la Universidad de Alcalá",
"Guía de Práctica Clínica…"), preferring the kind the question names; a journal's running head or a ministry's
letterhead names none and is passed over. A document whose first pages name no kind gets no title (nothing is
put first).
"""

from __future__ import annotations

import re

from rag.enumeration import ITEM

# Kinds of documents, as questions ask for them and as titles name them (accent-insensitive by the patterns).
_KINDS = (r"ley(?:es)?|norma(?:tiva)?|documento|reglamento|real\s+decreto|decreto|convenio|gu[ií]a|c[oó]digo|"
          r"ordenanza|circular|instrucci[oó]n(?:es)?|resoluci[oó]n|orden|constituci[oó]n|estatuto|disposici[oó]n|"
          r"pliego|prospecto|manual|directrices|acuerdo|convocatoria|protocolo|bases|"
          r"law|act|regulation|rule|document|code|guideline|guide|directive|ordinance|agreement|statute")
_GENERIC = {"norma", "normativa", "documento", "disposicion", "document", "rule"}
# "¿Qué ley…?", "¿En qué documento…?", "¿Cuál es la norma que…?", "Which regulation…?", "What law…?".
_ASKS = re.compile(r"(?:^|¿)\s*(?:(?:en|de|por|seg[uú]n)\s+)?(?:qu[eé]|cu[aá]l(?:es)?\s+(?:es|son)\s+(?:el|la|los|las)|"
                   r"which|what|in\s+which)\s+(?:\w+\s+)?(" + _KINDS + r")\b", re.IGNORECASE)
_NAMES_KIND = re.compile(r"\b(" + _KINDS + r")\b", re.IGNORECASE)
TITLE_SENTENCES = 40  # a title stands among a document's first sentences (chunks, by ordinal)
MAX_TITLE_CHARS = 300


def _fold(word: str) -> str:
    return " ".join(word.lower().translate(str.maketrans("áéíóú", "aeiou")).split())


def asked_kind(question: str) -> str | None:
    """The kind of document the question asks for ("ley", "documento", "guía"…), or None when it asks no
    "which document"."""
    found = _ASKS.search(question)
    return _fold(found.group(1)) if found else None


def title_of(sentences: list[str], asked: str | None = None) -> str | None:
    """The title among a document's first sentences (in reading order): the first that names the kind asked
    (``asked``, folded; any kind for a generic "documento"/"norma"), else the first that names any kind; a
    sentence opens with the kind's name or holds it capitalised ("…por la que se aprueba el Reglamento…")."""
    named = []
    for sentence in sentences:
        plain = " ".join(sentence.split())
        if not 8 <= len(plain) <= MAX_TITLE_CHARS or ITEM.match(plain):
            continue  # a list's item (a reference list's "• Guía práctica…") is no title
        kinds = [_fold(m.group(1)) for m in _NAMES_KIND.finditer(plain) if m.group(1)[0].isupper()]
        if kinds:
            named.append((plain, kinds))
    if asked and asked not in _GENERIC:
        for plain, kinds in named:
            if any(kind.startswith(asked[:5]) for kind in kinds):
                return plain
    return named[0][0] if named else None


def span_in(text: str, title: str) -> tuple[int, int] | None:
    """Where ``title`` (whitespace normalised) stands in ``text``, whatever spaces and line breaks it has there."""
    found = re.search(r"\s+".join(map(re.escape, title.split())), text)
    return (found.start(), found.end()) if found else None
