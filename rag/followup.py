"""Follow-up questions: "¿Y las leves?" after "¿Qué plazo tienen las infracciones graves?" is searched as
what it means, the previous question's topic with the new detail, by rules (no model needed).

A question is a follow-up when it opens like one ("¿Y …?", "and …", "what about …", "¿qué hay de …?") or is
too short to stand alone (four words at most, one of them a content word) while the conversation has an
earlier question. Its retrieval query is then the earlier question's words that the follow-up does not
replace, plus the follow-up's own words; answers and quotes still answer the follow-up as asked. With a model
declared capable, the model rewrites the follow-up first (``rewrite_with_model``).
"""

from __future__ import annotations

import re

from rag.analysis import fold_accents, stopwords

_OPENERS = re.compile(
    r"^\s*(¿\s*)?(y|e|and|what about|how about|and what about|qu[eé] hay de|qu[eé] pasa con|"
    r"y (en|con|para|sobre|si)|and (in|for|with|if)|also|tambi[eé]n|same for|lo mismo (para|con))\b",
    re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # words, numbers and codes such as "E7" or "2015"
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
    own_words = content_words(question, language)
    own = {fold_accents(w.lower()) for w in own_words}
    replaces_code = any(c.isdigit() for w in own_words for c in w)  # "And error E4?" replaces E7
    carried = [w for w in content_words(earlier, language) if fold_accents(w.lower()) not in own
               and not (replaces_code and any(c.isdigit() for c in w))]
    return " ".join([*carried, question.strip()])


_REWRITE = {
    "es": ("Reescribe la última pregunta para que se entienda sola, sin la conversación, con las mismas "
           "palabras cuando se pueda. Responde solo con la pregunta.\n\nConversación:\n{turns}\n\n"
           "Última pregunta: {question}\nPregunta completa:"),
    "en": ("Rewrite the last question so that it stands alone, without the conversation, keeping its words "
           "where possible. Reply with the question only.\n\nConversation:\n{turns}\n\n"
           "Last question: {question}\nStandalone question:"),
}


def rewrite_with_model(generator, question: str, previous: list[str], language: str) -> str | None:
    """A capable model's standalone version of a follow-up; None when its reply is unusable (empty, several
    lines, longer than the conversation itself, or without the follow-up's own words), so that the rules
    answer instead."""
    from rag.generator import SamplingParams, generate

    turns = "\n".join(f"- {p}" for p in previous[-3:])
    prompt = _REWRITE.get(language, _REWRITE["en"]).format(turns=turns, question=question)
    reply = generate(generator, [{"role": "user", "content": prompt}],
                     SamplingParams(max_tokens=64, temperature=0.0, seed=42)).strip().strip('"').strip()
    lines = [line for line in reply.splitlines() if line.strip()]
    if len(lines) != 1 or len(lines[0]) > len(question) + sum(len(p) for p in previous[-3:]):
        return None
    # A rewrite must still ask what the follow-up asks: every content word of it ("niños", "E4") stays.
    own = {fold_accents(w.lower()) for w in content_words(question, language)}
    if not own <= {fold_accents(w.lower()) for w in _WORD.findall(lines[0])}:
        return None
    return lines[0]
