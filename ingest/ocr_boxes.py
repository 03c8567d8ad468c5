"""OCR metadata of a chunk: which recognised words it holds, their boxes on the page, their confidence."""

from __future__ import annotations

import json

from ingest.ocr import OcrWord
from ingest.scan import ScannedPage

_LOOKAHEAD = 40  # words an OCR word may sit ahead of the last one matched (the chunker drops headers, tables)
_MARKUP = frozenset({"|", "---", "|---|", "›"})


def chunk_ocr_fields(text: str, page: int | None, page_end: int | None,
                     scanned: dict[int, ScannedPage]) -> dict[str, object]:
    """ChunkMetadata fields for a chunk on OCR'd pages (none for a chunk read from a text layer): the engine,
    the mean confidence of its words, and their boxes as JSON [[page, word, x0, y0, x1, y1], ...]."""
    if page is None:
        return {}
    pages = [n for n in range(page, (page_end or page) + 1) if n in scanned]
    if not pages:
        return {}
    words = [(n, w) for n in pages for line in scanned[n].ocr.lines() for w in line]
    matched = _align(text.split(), words)
    if matched:
        confidence = sum(w.confidence for _, w in matched) / len(matched)
    else:
        confidence = sum(scanned[n].ocr.confidence for n in pages) / len(pages)
    boxes = [[n, w.text, *w.box] for n, w in matched]
    return {"ocr": True, "ocr_engine": scanned[pages[0]].ocr.engine, "ocr_confidence": round(confidence, 1),
            "ocr_boxes": json.dumps(boxes, ensure_ascii=False, separators=(",", ":"))}


def _align(tokens: list[str], words: list[tuple[int, OcrWord]]) -> list[tuple[int, OcrWord]]:
    """The page words the chunk's tokens are, in order: each token is looked for a little ahead of the last
    word matched; a first match must be followed by the next token too (a common word alone could sit
    anywhere on the page)."""
    tokens = [t.strip("|") for t in tokens if t not in _MARKUP and t.strip("|")]
    texts = [w.text for _, w in words]
    matched: list[tuple[int, OcrWord]] = []
    at: int | None = None
    for i, token in enumerate(tokens):
        if at is None:  # not anchored yet: a token followed by the next one
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            for j, text in enumerate(texts):
                if text == token and (following is None or texts[j + 1:j + 2] == [following]):
                    matched.append(words[j])
                    at = j + 1
                    break
            continue
        for j in range(at, min(at + _LOOKAHEAD, len(texts))):
            if texts[j] == token:
                matched.append(words[j])
                at = j + 1
                break
    return matched
