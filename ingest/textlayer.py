"""Whether a PDF page's text layer is text: scanners' OCR layers are sometimes garbage ("«POAH «3E*»CM")."""

from __future__ import annotations

import re

from rag.analysis import SUPPORTED_LANGUAGES, fold_accents, stopwords

_TOKEN = re.compile(r"\S+")
_WORD = re.compile(r"^[(\"'¿¡«]*([^\W\d_]+(?:[-'’][^\W\d_]+)*)[)\"'.,;:!?»]*$")
_VOWELS = set("aeiouy")
_NUMBER = re.compile(r"^[(\"'«]*[-+]?[\d.,:/%€$]+[)\"'.,;:»]*$")
# Below this a page's text layer is not text. Measured with `python -m bench.ocr --text-quality`: every page of the
# shared text PDFs (es, en, fr) scores 0.86 or more, the garbage OCR layer's pages 0.35 or less.
MIN_TEXT_QUALITY = 0.6
MIN_CHARACTERS = 40  # shorter text layers (a page number, a stamp) say nothing either way


def text_quality(text: str) -> float:
    """Share of the text's characters in plausible words or numbers, times how far its stopword share
    reaches what prose has (8% of the words in any of our languages, and more): 1.0 for prose, near 0
    for OCR garbage."""
    share, words, tokens = _plausible_share(text)
    if tokens < 20:
        return share
    stop_share = max(sum(w in stopwords(lang) for w in words) for lang in SUPPORTED_LANGUAGES) / tokens
    return share * min(1.0, stop_share / 0.08)


def word_share(text: str) -> float:
    """Share of the text's characters in plausible words or numbers, whatever the words: a page of names
    and figures (a table) scores high, text from a misread font ("Tamilm#adu", "ujarat") low."""
    return _plausible_share(text)[0]


def _plausible_share(text: str) -> tuple[float, list[str], int]:
    """(share of characters in plausible words or numbers, those words folded, number of tokens)."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return 0.0, [], 0
    good = 0
    words: list[str] = []
    for token in tokens:
        match = _WORD.match(token)
        if match and _plausible(match.group(1)):
            good += len(token)
            words.append(fold_accents(match.group(1).lower()))
        elif _NUMBER.match(token):
            good += len(token)
    return good / sum(len(t) for t in tokens), words, len(tokens)


def is_garbage(text: str) -> bool:
    """A text layer long enough to judge whose quality is below MIN_TEXT_QUALITY."""
    return len(text.strip()) >= MIN_CHARACTERS and text_quality(text) < MIN_TEXT_QUALITY


def is_misdecoded(text: str) -> bool:
    """A text layer long enough to judge whose words are mostly implausible, whatever their stopwords (a
    font whose character map the reader got wrong, not a page of names and figures)."""
    return len(text.strip()) >= MIN_CHARACTERS and word_share(text) < MIN_TEXT_QUALITY


def _plausible(word: str) -> bool:
    """Letters with a vowel (or one letter), in one case pattern (lower, Title, UPPER), without long runs of
    consonants."""
    if len(word) == 1:
        return True
    if not (word.islower() or word.isupper() or word[0].isupper() and word[1:].islower()):
        return False
    folded = fold_accents(word.lower())
    if not any(c in _VOWELS for c in folded):
        return False
    return re.search(r"[^aeiouy\W]{5,}", folded) is None
