"""The grounded prompt: delimited, numbered sources and instructions in the question's language."""

from __future__ import annotations

from rag.generator import Message
from rag.types import ScoredChunk

ABSTENTION = {
    "es": "No he encontrado esta información en los documentos.",
    "en": "I could not find this in the documents.",
}

_SYSTEM = {
    "es": ("Eres un asistente que responde preguntas usando solo las fuentes numeradas que se te dan. "
           "Responde en español, de forma breve. Cita la fuente de cada afirmación con su número entre "
           "corchetes, por ejemplo [1]. Si las fuentes no contienen la respuesta, responde exactamente: "
           f"\"{ABSTENTION['es']}\""),
    "en": ("You are an assistant that answers questions using only the numbered sources you are given. "
           "Answer in English, briefly. Cite the source of every statement with its number in square "
           "brackets, for example [1]. If the sources do not contain the answer, reply exactly: "
           f"\"{ABSTENTION['en']}\""),
}
_LABELS = {"es": ("Fuentes", "Pregunta", "página"), "en": ("Sources", "Question", "page")}


def abstention(language: str) -> str:
    return ABSTENTION.get(language, ABSTENTION["en"])


def source_label(hit: ScoredChunk, language: str) -> str:
    meta = hit.chunk.metadata
    page_word = _LABELS.get(language, _LABELS["en"])[2]
    return f"{meta.source}, {page_word} {meta.page}" if meta.page is not None else meta.source


def build_messages(question: str, sources: list[ScoredChunk], language: str,
                   history: list[Message] | None = None) -> list[Message]:
    """System instructions, optional earlier turns, then the sources and the question."""
    sources_word, question_word, _ = _LABELS.get(language, _LABELS["en"])
    blocks = [f"[{n}] ({source_label(hit, language)})\n<<<\n{hit.chunk.context_text.strip()}\n>>>"
              for n, hit in enumerate(sources, start=1)]
    user = f"{sources_word}:\n\n" + "\n\n".join(blocks) + f"\n\n{question_word}: {question}"
    return [{"role": "system", "content": _SYSTEM.get(language, _SYSTEM["en"])}, *(history or []),
            {"role": "user", "content": user}]
