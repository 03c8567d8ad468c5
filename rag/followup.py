"""Follow-up questions: "¿Y las leves?" after "¿Qué plazo tienen las infracciones graves?" is searched as
what it means, the previous question's topic with the new detail, by rules (no model needed).

A question is a follow-up when it opens like one ("¿Y …?", "and …", "what about …", "¿qué hay de …?") or is
too short to stand alone (four words at most, one of them a content word) while the conversation has an earlier question. Its
retrieval query is then the earlier question's words that the follow-up does not replace, plus the
follow-up's own words; answers and quotes still answer the follow-up as asked.
"""

from __future__ import annotations

import re

from rag.analysis import fold_accents, stopwords

_OPENERS = re.compile(
    r"^\s*(¿\s*)?(y|e|and|what about|how about|and what about|qu[eé] hay de|qu[eé] pasa con|"
    r"y (en|con|para|sobre|si)|and (in|for|with|if)|also|tambi[eé]n|same for|lo mismo (para|con))\b",
    re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_SHORT = 1  # a question of one content word or none ("¿Y eso?", "Why?") leans on the one before


def content_words(text: str, language: str) -> list[str]:
    stop = stopwords(language)
    return [w for w in _WORD.findall(text) if fold_accents(w.lower()) not in stop]


def is_follow_up(question: str, language: str) -> bool:
    words = _WORD.findall(question)
    return bool(_OPENERS.match(question)) or (len(words) <= 4 and len(content_words(question, language)) <= _SHORT)


def contextualize(question: str, previous: list[str], language: str) -> str:
    """The query to search with: ``question`` itself, or, for a follow-up, the last earlier question's content
    words (those the follow-up does not repeat) followed by the question."""
    earlier = next((p for p in reversed(previous) if p.strip() and p.strip() != question.strip()), None)
    if earlier is None or not is_follow_up(question, language):
        return question
    own = {fold_accents(w.lower()) for w in content_words(question, language)}
    carried = [w for w in content_words(earlier, language) if fold_accents(w.lower()) not in own]
    return " ".join([*carried, question.strip()])
