"""Text analysis shared by indexing and querying: language, sentences, and BM25 terms.

The same ``Analyzer`` tokenises chunks at index time and questions at query time, so BM25 sees
accent-folded, stopword-free, Snowball-stemmed terms on both sides.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

import snowballstemmer

from rag.enumeration import BULLETS, LINE_CHARS

SUPPORTED_LANGUAGES = ("es", "en")
# Texts whose sentences are remembered: the sources of the last questions (a few dozen texts each).
SPLIT_CACHE_TEXTS = 4096
_STEMMER_NAMES = {"es": "spanish", "en": "english"}
_WORD = re.compile(r"\w+", re.UNICODE)

# Abbreviations after which a period does not end a sentence (lower-case, without the final dot).
_ABBREVIATIONS = frozenset(
    """
    art arts núm nums num sr sra sres sras srta dr dra dres lic ing arq prof ud uds vd vds av avda pág págs pag
    cap caps fig figs vol vols ed eds ej p aprox apdo admón dcha izq tel ref col cía sig ss sta sto pta ptas
    mr mrs ms st jr sr no nos vs etc e.g i.e cf al approx dept est inc ltd co corp gen gov mt rev
    ene feb mar abr may jun jul ago sep sept oct nov dic jan aug dec
    """.split()
)
# Words that number a heading in statutes and manuals ("Artículo 20.", "Chapter 3.").
_NUMBERED_HEADING = re.compile(r"^(artículo|articulo|capítulo|capitulo|título|titulo|sección|seccion|apartado|"
                               r"anexo|disposición|disposicion|libro|parte|article|chapter|section|part|annex)$")
# A sentence ends at . ! ? … (optionally followed by closing quotes/brackets) before whitespace.
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'»”)\]]*\s+")
# A paragraph's number or letter in a statute or a list ("1.", "12.", "a)"): it opens the sentence after it.
_ENUMERATOR = re.compile(r"(?:\d{1,3}\.|[a-z]\))")
# The number and the space before the sentence it opens ("2. El plazo…"); the focus checks set it aside too.
PARAGRAPH_NUMBER = re.compile(_ENUMERATOR.pattern + r"\s+(?=[A-ZÁÉÍÓÚÑ¿¡«\"(])")
# A list item's marker ("b) ", "2.ª ", "3.º ", "4) "): after a full stop it opens the next sentence.
_ITEM_OPENS = re.compile(r"(?:\(?[a-zñ]\)|\d{1,3}\.?[ªº]\.?|\d{1,3}\))\s")
# A line that opens with an item's marker (bullets included) starts a sentence even without a full stop before it.
_LINE_ITEM = re.compile(r"^\s*(?:\(?[a-zñ]\)|\d{1,3}\.?[ªº]\.?|\d{1,3}\)|[" + BULLETS + r"])\s")
_LINE_CHARS = LINE_CHARS


@lru_cache(maxsize=4)
def stopwords(language: str) -> frozenset[str]:
    """Accent-folded stopwords from spaCy's language data.

    The data file is loaded on its own: importing the ``spacy`` package costs ~2 s per process.
    """
    if language not in SUPPORTED_LANGUAGES:
        return frozenset()
    spacy_spec = importlib.util.find_spec("spacy")
    if spacy_spec is None or not spacy_spec.submodule_search_locations:
        raise ImportError("spacy is required for stopword lists (pip install spacy)")
    path = Path(next(iter(spacy_spec.submodule_search_locations))) / "lang" / language / "stop_words.py"
    spec = importlib.util.spec_from_file_location(f"_stop_words_{language}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return frozenset(fold_accents(w) for w in module.STOP_WORDS)


_local = threading.local()


def _stemmer(language: str):
    """One stemmer per thread and language: a snowball stemmer keeps the word it works on in itself, so two
    threads sharing one corrupt each other's words (seen as IndexError under concurrent queries and ingests)."""
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    if language not in stemmers:
        stemmers[language] = snowballstemmer.stemmer(_STEMMER_NAMES.get(language, "english"))
    return stemmers[language]


@lru_cache(maxsize=200_000)
def _stem(language: str, word: str) -> str:
    """A word's stem, remembered: the pure-Python Snowball stemmer took 70% of building a BM25 index (each
    word of a sentence is stemmed again in every window that holds it), while words repeat (Zipf).

    Spanish nouns made of a verb with "-ación" share the verb's stem: Snowball strips the suffix only where
    the word is long enough, so "ampliación" kept its ending while "ampliar"/"ampliado" became "ampli", and it
    cuts "-icación" one syllable deeper than "-icar" ("notificación" -> "notif", "notificar" -> "notific"): a
    question asking how far a deadline "se puede ampliar" missed the article on its "ampliación". The verb's
    stem is kept when at least 5 letters remain ("formación" stays apart from "forma")."""
    if language == "es":
        for suffix in _NOMINAL_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 5:
                return word[:-len(suffix)]
    return _stemmer(language).stemWord(word)


_NOMINAL_SUFFIXES = ("aciones", "acion")  # accent-folded


def fold_accents(text: str) -> str:
    """Lower-case and strip diacritics ("Constitución" -> "constitucion"); keeps ñ distinct from n."""
    text = text.lower().replace("ñ", "\x00")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("\x00", "ñ")


def detect_language(text: str, default: str = "en") -> str:
    """Spanish or English, by which language's stopwords cover more of the words.

    Short questions carry few content words but many function words ("¿Cuál es la dosis...?"),
    which is exactly what this counts; Spanish-only punctuation breaks ties.
    """
    words = [fold_accents(w) for w in _WORD.findall(text)]
    if not words:
        return default
    scores = {lang: sum(w in stopwords(lang) for w in words) for lang in SUPPORTED_LANGUAGES}
    if "¿" in text or "¡" in text or re.search(r"[ñáéíóú]", text.lower()):
        scores["es"] += 2
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] > 0 else default


def split_sentences(text: str) -> list[str]:
    """Split Spanish or English prose into sentences.

    Keeps abbreviations ("art.", "núm.", "Sr.", "e.g."), initials, decimal numbers and ordinals
    ("1.º") inside the sentence, and keeps "¿...?" / "¡...!" whole. A question's sources are read by the
    evidence, compression and grounding steps: each text is split once (remembered by its text, as the query-time
    embedder remembers its vectors), and every caller gets its own list.
    """
    return list(_split_once(text))


@lru_cache(maxsize=SPLIT_CACHE_TEXTS)
def _split_once(text: str) -> tuple[str, ...]:
    text = re.sub(r"[ \t\r\f\v]+", " ", text).strip()
    if not text:
        return ()
    sentences: list[str] = []
    for block in (piece for paragraph in re.split(r"\n\s*\n", text) for piece in _line_items(paragraph)):
        block = block.replace("\n", " ").strip()
        start = 0
        for match in _BOUNDARY.finditer(block):
            candidate = block[start:match.start()].rstrip()
            if _is_false_boundary(candidate, block[match.end():match.end() + 8]):
                continue
            sentences.append(block[start:match.end()].strip())
            start = match.end()
        tail = block[start:].strip()
        if tail:
            sentences.append(tail)
    # a piece without a letter or digit ("." alone, a stray bracket) is no sentence
    return tuple(s for s in sentences if s and any(c.isalnum() for c in s))


def _line_items(block: str) -> list[str]:
    """A paragraph cut where its lines are list items: a line that opens with an item marker ("• ", "- ",
    "b) ", "2.º "), and the short lines after a line that ends with a colon ("…la cantidad siguiente:" /
    "Año 2025: 0,87 €" / "Año 2026: 0,89 €"), which carry no full stop and would otherwise run into one sentence.
    A long line is wrapped prose and is not cut."""
    lines = block.split("\n")
    pieces, current = [], [lines[0]]
    listing = lines[0].rstrip().endswith(":")  # the lines after a lead-in may be unmarked items
    for line in lines[1:]:
        plain = line.strip()
        opens = plain[:1].isupper() or plain[:1].isdigit()
        short = 0 < len(plain) <= _LINE_CHARS and opens
        if _LINE_ITEM.match(line) or (listing and short) or (current[-1].rstrip().endswith(":") and opens):
            pieces.append("\n".join(current))
            current = [line]
        elif listing and len(current) == 1 and plain[:1].isupper():  # a paragraph after the list's last line
            pieces.append("\n".join(current))
            current = [line]
            listing = False
        else:
            current.append(line)
            listing = False
        listing = listing or plain.endswith(":")
    pieces.append("\n".join(current))
    return pieces


def _is_false_boundary(candidate: str, after: str) -> bool:
    """Whether the boundary after ``candidate`` (the sentence so far) is none; ``after``: the next characters."""
    if _ENUMERATOR.fullmatch(candidate):
        return True  # "2." alone: the paragraph's number belongs to the sentence it opens
    if PARAGRAPH_NUMBER.match(after) or _ITEM_OPENS.match(after):
        return False  # "… expreso. 2. El plazo…", "… generales. b) Oposiciones…": the next paragraph or item begins
    following = after[:1]
    if not candidate.endswith("."):
        return False  # ! ? … always end a sentence
    last_word = candidate.rsplit(" ", 1)[-1].rstrip(".").lstrip("(¿¡\"'«“").lower()
    if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
        return True  # "art. 14", "J. Smith"
    words = candidate.lower().split()
    if len(words) >= 2 and _NUMBERED_HEADING.match(words[-2]) and re.fullmatch(r"[\divxlc]+\.", words[-1]):
        return True  # "Artículo 20. Resolución" / "Capítulo IV. Disposiciones": heading number, not an end
    if following and (following.islower() or following.isdigit()):
        return True  # "etc. y otros", "núm. 3" style continuations
    return False


# Number words are stopwords in spaCy's lists, so "plazo de tres meses" lost its number and never met "3 meses".
# Written as digits instead (accent-folded keys), they match either way. "uno/una/one" stay articles.
_NUMBER_WORDS = {
    "es": dict(zip("dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciseis "
                   "diecisiete dieciocho diecinueve veinte veintiuno veintidos veintitres veinticuatro veinticinco "
                   "veintiseis veintisiete veintiocho veintinueve treinta".split(), map(str, range(2, 31)), strict=True))
    | {"cuarenta": "40", "cincuenta": "50", "sesenta": "60", "setenta": "70", "ochenta": "80", "noventa": "90",
       "cien": "100", "doscientos": "200", "trescientos": "300", "quinientos": "500", "mil": "1000"},
    "en": dict(zip("two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
                   "seventeen eighteen nineteen twenty".split(), map(str, range(2, 21)), strict=True))
    | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90"},
}
# Abbreviations of the words that number a statute's parts ("art. 21" finds "Artículo 21").
_ABBREVIATED = {"es": {"art": "articulo", "arts": "articulo", "apdo": "apartado", "apdos": "apartado",
                       "disp": "disposicion", "cap": "capitulo"}, "en": {}}
# Bumped whenever the BM25 terms of a text change: an index analysed otherwise is re-analysed on open.
# How text is cut into sentences and list items are tied to their lead-ins: chunks made by another version are
# ingested again (``FolderIngestor.config_parts``). 2: a list item's marker ("b) ", "2.ª ") opens a sentence.
# 3: a line that opens with a marker or a bullet, and a short line under a line ending with a colon, opens one.
SEGMENTATION_VERSION = "sentences-3"
ANALYSIS_VERSION = "terms-3"  # 2: number words as digits, statute abbreviations spelled out; 3: "-ación" nouns


class Analyzer:
    """Turns text into BM25 terms for one language: fold accents, drop stopwords, stem.

    ``canonical=True`` (the BM25 index and its queries) also writes number words as digits ("tres" -> "3")
    and spells out statute abbreviations ("art." -> "artículo"), on both sides, so either form finds the other.
    Measured on XQuAD (BM25 over sentences, NDCG@10): es 0.9193 -> 0.9210 (the 42 questions with a number
    0.878 -> 0.887), en 0.9319 -> 0.9316; a question asked with the other form scores the same as asked.
    """

    def __init__(self, language: str = "es", canonical: bool = False) -> None:
        if language not in _STEMMER_NAMES:
            raise ValueError(f"language must be one of {sorted(_STEMMER_NAMES)}, got {language!r}")
        self.language = language
        self._canonical = {**_NUMBER_WORDS[language], **_ABBREVIATED[language]} if canonical else None

    def terms(self, text: str) -> list[str]:
        stop = stopwords(self.language)
        words = _WORD.findall(fold_accents(text))
        if self._canonical is not None:
            words = [self._canonical.get(w, w) for w in words]
        return [_stem(self.language, w) for w in words if w not in stop]
