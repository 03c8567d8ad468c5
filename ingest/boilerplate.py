"""Running blocks, verification stamps and contents pages: found across a document's pages, taken out of them.

A running block is what is printed on many pages besides the body: a journal's head, a footer with the page
number, a draft mark, the e-signature stamp of Spanish e-administration ("Código Seguro de Verificación …
PÁGINA 3/9"). A contents page lists headings with their page numbers. Left in, they start quotes ("PÁGINA 2/9
Artículo 4 …") and contents lines compete with the articles they name. Every line taken out is kept in a
report with the rule that took it and its role, so that ``bench.boilerplate`` can show what went.

>>> pages = ["Boletín Oficial\\nUno.\\n1", "Boletín Oficial\\nDos.\\n2", "Boletín Oficial\\nTres.\\n3"]
>>> stripped = strip_boilerplate(pages)
>>> stripped.texts, stripped.report.counts(), stripped.report.titles
(['Boletín Oficial\\nUno.', 'Dos.', 'Tres.'], {'page_number': 3, 'running': 2}, ['Boletín Oficial'])
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from rag.analysis import fold_accents


class Role(StrEnum):
    """What a line of a page is, when it is not body text: the parser's report (``PdfParser.boilerplate``) counts
    the lines dropped by role; none of them reaches a chunk, so no chunk carries one."""

    TITLE = "title"  # a running head's first printing, at the top of the first page: kept there, once
    RUNNING = "running"  # printed on every page: running head, footer, page number
    STAMP = "stamp"  # e-signature / verification stamp
    TOC = "toc"  # table of contents


class Rule(StrEnum):
    """Why a line was taken out."""

    RUNNING = "running"  # the same line on most pages, wherever it sits
    EDGE = "edge"  # among the first or last lines of many pages (running headers and footers)
    PAGE_NUMBER = "page_number"  # "12", "- 12 -", "Página 12 de 40" at the top or bottom of many pages
    STAMP = "stamp"  # a verification stamp line whose pattern recurs ("CSV: GEN-4da0-…", "…/verificarFirma")
    BLOCK = "block"  # a line that varies (a code, a URL, a date, "3/9") inside a running block
    TOC = "toc"  # a contents heading, entry or wrapped entry on a contents page
    TABLE = "table"  # a table made of removed lines (a stamp drawn as a ruled box): the role of those lines


_ROLES = {Rule.RUNNING: Role.RUNNING, Rule.EDGE: Role.RUNNING, Rule.PAGE_NUMBER: Role.RUNNING,
          Rule.STAMP: Role.STAMP, Rule.BLOCK: Role.STAMP, Rule.TOC: Role.TOC}

# Headers/footers: a line among the first or last _EDGE_LINES of a page whose text (digits ignored) recurs on
# at least _BOILERPLATE_SHARE of the pages, and on _MIN_PAGES or more.
_EDGE_LINES = 3
_BOILERPLATE_SHARE = 0.3
_MIN_PAGES = 3
# Anywhere on the page a line needs more: on 60% of the pages, and once a page. On the shared corpus the body
# lines that recur most ("Por lo tanto:", "A) ASPECTOS ORGANIZATIVOS") are on at most half of a document's
# pages, and a repeated paragraph (blind text, a table's rows) recurs several times on each page; running
# blocks are on 90-100% of the pages, once each.
_RUNNING_SHARE = 0.6
_ONCE_A_PAGE = 1.5  # occurrences per page at most, on average over the pages that have the line
_MIN_LETTERS = 4  # "a)", "1.", "Art." never count as running lines
_VARYING_LETTERS = 12  # letters beside the codes and URLs of a varying stamp line ("VERIFICACIÓN")
# A contents page: entries are at least half of the lines from its heading (or first entry) to its last entry,
# with at most _TOC_GAP other lines (wrapped entries) between two entries.
_TOC_SHARE = 0.5
_TOC_MIN_ENTRIES = 3
_TOC_GAP = 2
_TOC_LEADER_PAGE = 5  # leader-dot lines that make a page without a heading a contents page
_TABLE_REMOVED = 0.8  # share of a table's words on removed lines that makes it a removed table

_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
# Verification codes and hashes: 16 or more letters and digits (and dashes) without a space, both kinds mixed.
_CODE = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{16,}(?![\w-])")
_DATE = re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?\b"
                   r"|\b\d{1,2}:\d{2}(?::\d{2})?\b")
_PAGE_OF = re.compile(r"\b(?:p[áa]g(?:ina)?\.?|page|p\.)\s*\d+(?:\s*(?:/|de|of|sur)\s*\d+)?\b"
                      r"|(?<![\d/])\d{1,4}\s*/\s*\d{1,4}(?![\d/])", re.IGNORECASE)
# A whole line that is a page number: "12", "- 12 -", "Página 12", "12 / 40", "Page 3 of 9".
_PAGE_NUMBER = re.compile(r"^[\s\-–—|·•]*(?:(?:p[áa]g(?:ina)?|page|p)\.?\s*)?"
                          r"\d{1,4}(?:\s*(?:/|de|of|sur)\s*\d{1,4})?[\s\-–—|·•]*$", re.IGNORECASE)
# Lines of e-signature and verification stamps (Spanish e-administration, Catalan, English).
_STAMP = re.compile(
    r"c[óo]digo seguro|\bcsv\b|verificarfirma|\bcod(?:i|igo|\.)?\s*(?:de\s*)?verificaci[óo]|puede verificar"
    r"|direcci[óo]n de validaci[óo]n|verificable en|(?:https?://|www\.)\S*(?:verifica|validacion|csv)"
    r"|firmado (?:electr[óo]nicamente )?por|firmante|documento firmado|copia aut[ée]ntica"
    r"|signat electr[òo]nicament"
    r"|\bp[áa]gina\s*\d+\s*(?:/|de)\s*\d+|\bpage \d+ of \d+", re.IGNORECASE)
# Contents: leader dots (or an ellipsis, or underscores) to the end of the line, then maybe a page number.
_LEADER = re.compile(r"(?:(?:\.\s?){4,}|…{2,}|_{4,})\s*(?:\d{1,4}|[ivxlc]{1,6})?\s*$", re.IGNORECASE)
_ENDS_WITH_PAGE = re.compile(r"^(?=.*[^\W\d_]{3}).*[^\d\s]\s+\d{1,3}\s*$")  # "1.2 Alcance de la Guía 9"
_TOC_HEADINGS = {"indice", "indice general", "indice de contenidos", "indice de contenido", "sumario",
                 "sumari", "contenido", "contenidos", "tabla de contenido", "tabla de contenidos", "index",
                 "contents", "table of contents", "sommaire", "table des matieres"}


@dataclass(frozen=True)
class Removed:
    """A line (or a table) taken out of a page, with the rule that took it."""

    page: int
    rule: Rule
    text: str
    role: Role


@dataclass
class BoilerplateReport:
    """What was taken out of one document's pages, line by line."""

    pages: int = 0
    removed: list[Removed] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)  # running lines kept at the top of the first page

    def counts(self) -> dict[str, int]:
        """Lines removed by rule, in the order the rules first took a line."""
        return dict(Counter(str(r.rule) for r in self.removed))

    def by_role(self) -> dict[str, int]:
        return dict(Counter(str(r.role) for r in self.removed))


@dataclass
class Stripped:
    """Page texts without their running blocks and contents lines, and what was taken out."""

    texts: list[str]
    report: BoilerplateReport

    def takes_table(self, page: int, words: set[str], text: str) -> bool:
        """Whether a table on ``page`` is made of removed lines (80% of its words are theirs), and then
        recorded as removed: pdfplumber reads a stamp drawn in a box as a table."""
        roles: dict[str, Role] = {}  # removed word -> the role of a line it was taken out with
        for removed in self.report.removed:
            if removed.page == page and removed.rule != Rule.TABLE:
                roles.update(dict.fromkeys(removed.text.split(), removed.role))
        hits = Counter(roles[w] for w in words if w in roles)
        if not words or sum(hits.values()) < _TABLE_REMOVED * len(words):
            return False
        role = hits.most_common(1)[0][0]
        self.report.removed.append(Removed(page, Rule.TABLE, " ".join(text.split()), role))
        return True


def normalise(line: str) -> str:
    """A line's form for recurrence: whitespace collapsed, digits as "#", case folded."""
    return re.sub(r"\d+", "#", " ".join(line.split())).casefold()


def strip_boilerplate(page_texts: list[str], heading: re.Pattern[str] | None = None) -> Stripped:
    """Running blocks, stamps and contents lines taken out of ``page_texts`` (page 1 first).

    ``heading``: numbered headings ("Artículo 5."), whose digits are kept when lines are compared, so that
    articles at the top of many pages are not taken for a running head.
    """
    lines = [text.splitlines() for text in page_texts]
    marks: list[dict[int, Rule]] = [{} for _ in lines]
    keys = [[_key(ln, heading) for ln in page] for page in lines]
    if len(page_texts) >= _MIN_PAGES:
        _mark_running(lines, keys, marks)
        _mark_edges(lines, keys, marks)
        _mark_varying(lines, marks)
    _mark_contents(lines, marks, heading)
    report = BoilerplateReport(pages=len(page_texts), titles=_keep_title(lines, marks))
    texts = []
    for number, (page, page_marks) in enumerate(zip(lines, marks, strict=True), start=1):
        report.removed.extend(Removed(number, page_marks[i], " ".join(page[i].split()), _ROLES[page_marks[i]])
                              for i in sorted(page_marks))
        texts.append("\n".join(ln for i, ln in enumerate(page) if i not in page_marks) if page_marks
                     else page_texts[number - 1])
    return Stripped(texts, report)


def _key(line: str, heading: re.Pattern[str] | None) -> str:
    if heading is not None and heading.match(line):
        return " ".join(line.split()).casefold()
    return normalise(line)


def _letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def _stamp_key(line: str) -> str:
    """A stamp line's pattern: its URLs, codes and dates blanked (they may change from page to page)."""
    line = _DATE.sub("<date>", _CODE.sub("<code>", _URL.sub("<url>", line)))
    return normalise(line)


def _needed(pages: int, share: float) -> float:
    return max(_MIN_PAGES, share * pages)


def _mark_running(lines: list[list[str]], keys: list[list[str]], marks: list[dict[int, Rule]]) -> None:
    """Stamp lines whose pattern recurs on a share of the pages, and lines on most pages, once a page."""
    pages_with = Counter(k for page in keys for k in set(page) if k)
    occurrences = Counter(k for page in keys for k in page if k)
    stamps = [[_stamp_key(ln) if _STAMP.search(ln) else "" for ln in page] for page in lines]
    stamp_pages = Counter(k for page in stamps for k in set(page) if k)
    edge_needed = _needed(len(lines), _BOILERPLATE_SHARE)
    running_needed = _needed(len(lines), _RUNNING_SHARE)
    for page, page_keys, page_stamps, page_marks in zip(lines, keys, stamps, marks, strict=True):
        for i, (key, stamp) in enumerate(zip(page_keys, page_stamps, strict=True)):
            if stamp and stamp_pages[stamp] >= edge_needed:
                page_marks[i] = Rule.STAMP
            elif (key and _letters(key) >= _MIN_LETTERS and pages_with[key] >= running_needed
                  and occurrences[key] <= _ONCE_A_PAGE * pages_with[key]):
                page_marks[i] = Rule.PAGE_NUMBER if _PAGE_NUMBER.match(page[i]) else Rule.RUNNING


def _edges(page: list[str], page_marks: dict[int, Rule]) -> list[int]:
    """The first and last lines of a page, past the lines already taken out."""
    left = [i for i, ln in enumerate(page) if ln.strip() and i not in page_marks]
    return left[:_EDGE_LINES] + left[-_EDGE_LINES:] if len(left) > 2 * _EDGE_LINES else left


def _mark_edges(lines: list[list[str]], keys: list[list[str]], marks: list[dict[int, Rule]]) -> None:
    """Lines at the top or bottom of a share of the pages: running headers and footers, page numbers."""
    edges = [_edges(page, page_marks) for page, page_marks in zip(lines, marks, strict=True)]
    counts = Counter(k for page_keys, page_edges in zip(keys, edges, strict=True)
                     for k in {page_keys[i] for i in page_edges} if k)
    pages_with = Counter(k for page in keys for k in set(page) if k)
    occurrences = Counter(k for page in keys for k in page if k)
    needed = _needed(len(lines), _BOILERPLATE_SHARE)
    for page, page_keys, page_edges, page_marks in zip(lines, keys, edges, marks, strict=True):
        for i in page_edges:
            key = page_keys[i]
            if counts[key] < needed:
                continue
            if _PAGE_NUMBER.match(page[i]):  # bare numbers are common in the body too: no once-a-page test
                page_marks[i] = Rule.PAGE_NUMBER
            elif _letters(key) >= _MIN_LETTERS and occurrences[key] <= _ONCE_A_PAGE * pages_with[key]:
                page_marks[i] = Rule.EDGE


def _varies(line: str) -> bool:
    """A line made of what changes from page to page in a stamp: a code, a URL or "3/9" (with dates and a few
    words beside them), or a page number. A date alone does not make one ("Madrid, 13/03/2024" is body)."""
    if _PAGE_NUMBER.match(line):
        return True
    rest = _PAGE_OF.sub(" ", _CODE.sub(" ", _URL.sub(" ", line)))
    return rest != line and _letters(_DATE.sub(" ", rest)) <= _VARYING_LETTERS


# A varying line belongs to a block of running or stamp lines; a page number alone is no block (the line
# next to it is body, "<url>https://…</url>" in a manual's example).
_BLOCK_RULES = {Rule.RUNNING, Rule.EDGE, Rule.STAMP, Rule.BLOCK}


def _mark_varying(lines: list[list[str]], marks: list[dict[int, Rule]]) -> None:
    """Lines that vary (a per-page code, a URL with a page id, "PÁGINA 3/9") next to a running block's."""
    for page, page_marks in zip(lines, marks, strict=True):
        if not page_marks:
            continue
        changed = True
        while changed:
            changed = False
            filled = [i for i, ln in enumerate(page) if ln.strip()]
            for at, i in enumerate(filled):
                if i in page_marks or not _varies(page[i]):
                    continue
                near = filled[max(0, at - 1):at] + filled[at + 1:at + 2]
                if any(page_marks.get(j) in _BLOCK_RULES for j in near):
                    page_marks[i] = Rule.BLOCK
                    changed = True


def _keep_title(lines: list[list[str]], marks: list[dict[int, Rule]]) -> list[str]:
    """The running lines that open the first page with text (a title or masthead repeated as running head:
    "International Council of Containership Operators", "PLIEGO DE CONDICIONES DEFINITIVO") stay there, once:
    the document says what it is somewhere. Stamps and page numbers before them are passed over; one other
    line between two of them too (OCR reads a page's varying "Revised Page No. 1" among them)."""
    first = next((n for n, page in enumerate(lines) if any(ln.strip() for ln in page)), None)
    if first is None:
        return []
    page, page_marks = lines[first], marks[first]
    kept: list[int] = []
    gap = 0
    for i in (i for i, ln in enumerate(page) if ln.strip()):
        rule = page_marks.get(i)
        if rule in (Rule.RUNNING, Rule.EDGE):
            kept.append(i)
            gap = 0
        elif rule is None:
            gap += 1
            if not kept or gap > 1:
                break
    for i in kept:
        del page_marks[i]
    return [" ".join(page[i].split()) for i in kept]


def _is_toc_heading(line: str) -> bool:
    return fold_accents(" ".join(line.split()).casefold()).rstrip(":. ") in _TOC_HEADINGS


def _mark_contents(lines: list[list[str]], marks: list[dict[int, Rule]],
                   heading: re.Pattern[str] | None) -> None:
    """Contents pages: from the "ÍNDICE" heading (or the first entry) to the last entry, when entries ("Objeto
    ....... 3", "1.2 Alcance de la Guía 9", "CAPÍTULO II: Derechos de Oficina") are at least half of the span.
    A page without a heading is one when it has many leader-dot lines, or follows a contents page and is
    mostly entries."""
    previous = False
    for page, page_marks in zip(lines, marks, strict=True):
        filled = [i for i, ln in enumerate(page) if ln.strip() and i not in page_marks]
        heads = [i for i in filled if _is_toc_heading(page[i])]
        leaders = {i for i in filled if _LEADER.search(page[i])}
        entries = leaders | {i for i in filled if _ENDS_WITH_PAGE.match(page[i].strip())
                             or (heading is not None and heading.match(page[i]))}
        span: list[int] = []
        if heads:
            span = _contents_span(filled, entries, heads[0])
        elif len(leaders) >= _TOC_LEADER_PAGE and len(leaders) >= _TOC_SHARE * len(filled):
            span = _contents_span(filled, leaders, None)
        elif previous:
            span = _contents_span(filled, entries, None)
        found = sum(i in entries for i in span)
        previous = found >= _TOC_MIN_ENTRIES and found >= _TOC_SHARE * len(span)
        if previous:
            page_marks.update(dict.fromkeys(span, Rule.TOC))


def _contents_span(filled: list[int], entries: set[int], head: int | None) -> list[int]:
    """The lines from ``head`` (or the first entry) to the last entry that follows with at most ``_TOC_GAP``
    other lines before it: the body that starts after a contents list on the same page is not part of it."""
    start = head if head is not None else min(entries, default=None)
    if start is None:
        return []
    after = [i for i in filled if i >= start]
    end, gap = start, 0
    for i in after[1:] if head is not None else after:
        if i in entries:
            end, gap = i, 0
        else:
            gap += 1
            if gap > _TOC_GAP:
                break
    return [i for i in after if i <= end]
