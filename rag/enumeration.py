"""Enumerations: the items of a list and the lead-in sentence that introduces them.

Laws, agreements and tenders enumerate: "En la sección II se publicarán: a) … b) Oposiciones y concursos." The
answer to "¿en qué sección se publican las oposiciones?" needs both the item and its lead-in, which the sentence
splitter puts in different sentences (items may be pages away from the lead-in). ``lead_ins`` gives each
sentence of a sequence the lead-in in force for it: the chunker stores it with the item's chunk (``lead_in``
metadata, and in the window that the window retrievers read) and the evidence step scores and quotes an item
with it.

An item opens with a marker: ``a)``, ``(b)``, ``1.ª``, ``2.º``, ``3)``, ``iv)``, a dash or a bullet; a numbered
paragraph ("2. El plazo…") is an item only under a lead-in. A lead-in ends with a colon, or holds the list's
first item after its colon ("…las siguientes materias: 1.ª La regulación…").
"""

from __future__ import annotations

import re

# Bullets as PDFs extract them: dashes, typographic bullets, and the Symbol/Wingdings glyphs of word processors'
# bullets that land in Unicode's private use area ("\uf0b7 Registro presupuestal.").
BULLETS = "-–—•·▪●◦○■□►▸➢➤✓✔❖\uf0a7\uf0b7\uf0d8\uf076\uf0fc\uf0e0\uf02d"
# The marker that opens an item. Lower-case letters only: "A) Disposiciones" is a heading more often than not.
_MARKER = r"(?:\(?[a-zñ]\)|\(?\d{1,3}\)|\d{1,3}\.?\s?[ªº]\.?|[ivxlc]{1,6}\)|[" + BULLETS + r"]\s)"
ITEM = re.compile(r"^\s*" + _MARKER)
_NUMBERED = re.compile(r"^\s*\d{1,3}\.\s")  # "2. " paragraph number: an item under a lead-in, else a paragraph
# A lead-in glued to its first item: the text up to the colon followed by an item marker.
_GLUED = re.compile(r"^(.{12,}?:)\s+(?=" + _MARKER + ")")
# A heading ends any list: "Artículo 3. Solicitud.", "CAPÍTULO II", "Disposición adicional primera".
_HEADING = re.compile(r"^\s*(?:art[ií]culo|cap[ií]tulo|t[ií]tulo|secci[oó]n|disposici[oó]n|anexo|article|chapter|"
                      r"section|annex)\b|^[^a-zñáéíóú]{4,80}$", re.IGNORECASE)
GAP = " […] "  # between a lead-in and an item that does not follow it
ITEM_SENTENCES = 3  # an item may run over this many further sentences ("16.ª Sanidad exterior. Bases y …")
MAX_LEAD_CHARS = 400  # a longer "lead-in" is a paragraph that happens to end with a colon: the item keeps its text
LINE_CHARS = 70  # an unmarked line under a lead-in is an item up to this length (a tariff's or a table's line)


def bare(sentence: str) -> str:
    """The sentence without a trailing gap marker (a window that starts with a far lead-in)."""
    return sentence.rstrip().removesuffix("[…]").rstrip()


def lead_of(sentence: str) -> str | None:
    """The lead-in a sentence opens for the items after it, or None."""
    plain = bare(sentence)
    if len(plain) > MAX_LEAD_CHARS:
        return None
    if plain.endswith(":") and not ITEM.match(plain):
        return plain
    glued = _GLUED.match(plain)
    return glued.group(1) if glued else None


def family(sentence: str, under_lead: bool) -> str | None:
    """The kind of marker that opens an item ("letter", "ordinal", "number", "roman", "dash"), or None."""
    match = ITEM.match(sentence)
    if match is None:
        if not under_lead:
            return None
        if _NUMBERED.match(sentence):
            return "number"
        return "line" if _is_line(sentence) else None
    marker = match.group(0).strip().strip("()")
    if marker[:1] in BULLETS:
        return "dash"
    if re.fullmatch(r"[ivxlc]{1,6}\)?", marker) and len(marker.rstrip(")")) > 1:
        return "roman"
    if marker[:1].isalpha():
        return "letter"
    return "ordinal" if re.search("[ªº]", marker) else "number"


def _is_line(sentence: str) -> bool:
    """An unmarked line under a lead-in ("Año 2025: 0,87 €", "Bachillerato: 5 puntos"): short, opening with a
    capital or a digit, and no heading (which ends the list). The splitter makes such lines sentences of their own
    (``rag.analysis``: short lines after a line that ends with a colon)."""
    plain = bare(sentence).strip()
    return 0 < len(plain) <= LINE_CHARS and (plain[0].isupper() or plain[0].isdigit()) and not _HEADING.match(plain)


def _item_follows(sentences: list[str], i: int, kind: str) -> bool:
    """Whether sentence ``i`` is an item's further sentence: an item of the list's kind follows within
    ``ITEM_SENTENCES`` sentences, and no heading stands in between."""
    for sentence in sentences[i:i + ITEM_SENTENCES + 1]:
        if _HEADING.match(sentence):
            return False
        found = family(sentence, True)
        if found not in (None, "line"):
            return found == kind
    return False


def lead_ins(sentences: list[str]) -> list[str | None]:
    """For each sentence, the lead-in of the list it is an item of (None: not an item, or no lead-in found).

    A list runs from its lead-in over items of one kind of marker and the further sentences of an item (a
    sentence that is no item but is followed by one of the list's items); any other sentence ends it, so a
    statute's next numbered paragraph after a lettered list is not an item of it. An unmarked line has no further
    sentences: the first longer sentence after a run of lines ends the list. An item that ends with a
    colon opens a list of its own inside the outer one (its items get both lead-ins).
    """
    found: list[str | None] = []
    current: str | None = None
    kind: str | None = None  # the list's marker kind, set by its first item
    for i, sentence in enumerate(sentences):
        marker = family(sentence, current is not None)
        if marker == "line" and kind not in (None, "line"):
            marker = None  # a short sentence inside a marked list: an item's further sentence, or the list's end
        if current is not None and marker is not None and kind in (None, marker):
            found.append(current)
            kind = marker
            plain = bare(sentence)
            glued = _GLUED.match(plain)
            if plain.endswith(":") and len(current) + len(plain) < MAX_LEAD_CHARS:
                current, kind = f"{current} {plain}", None  # a list inside the list
            elif glued:
                current, kind = glued.group(1), None
            continue
        if (current is not None and marker is None and kind not in (None, "line") and lead_of(sentence) is None
                and _item_follows(sentences, i, kind)):
            found.append(current)  # an item's further sentence: the list goes on
            continue
        found.append(None)
        current, kind = lead_of(sentence), None
        if current is not None and current != bare(sentence):  # glued: its first item sets the list's kind
            kind = family(bare(sentence)[len(current):].lstrip(), True)
    return found


def with_lead(lead: str, item: str, adjacent: bool) -> str:
    """How an item reads with its lead-in: joined when the item follows it, a gap marker between otherwise."""
    return f"{lead} {item}" if adjacent else f"{lead}{GAP}{item}"


# "¿Qué órganos…?", "¿Cuáles son los requisitos…?", "¿Quiénes forman parte…?", "What are the…", "List the…": the
# answer is a list. A singular "¿Qué plazo…?" or "¿Cuál es…?" is not.
_ASKS_LIST = re.compile(
    r"^\W*(?:y\s+)?(?:(?:sobre|en|de|a|con|para|por|entre|ante)\s+)?(?:(?:cu[aá]les|qui[eé]nes)\b|qu[eé]\s+(?:\w+\s+){0,2}?\w+(?:es|[aeiouáéó]s)\b(?<!\bmes)(?<!\bplazos)"
    r"(?!\s+(?:es|era|fue)\b)|enumer\w+|"
    r"what\s+are\b|which\s+\w+s\s+(?:are|can|must|may)\b|who\s+are\b|list\b)", re.IGNORECASE)


def asks_list(question: str) -> bool:
    """Whether the question asks for the items of a list (its lead-in and every item is the answer)."""
    question = question.strip()
    asked = question[question.rfind("¿"):] if "¿" in question else question  # "Además de X, ¿qué…?"
    return bool(_ASKS_LIST.match(asked))


def item_order(text: str) -> tuple[int, str]:
    """Where an item stands in its list by its marker ("b)" after "a)", "2.ª" after "1.ª"); dashes keep order."""
    match = ITEM.match(text) or _NUMBERED.match(text)
    if match is None:
        return (0, "")
    marker = match.group(0).strip().strip("()").rstrip(".)ªº ").strip()
    if marker.isdigit():
        return (int(marker), "")
    return (0, marker) if marker.isalpha() else (0, "")
