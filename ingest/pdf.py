"""PDF parsing: page text with pypdf (1-based page numbers), ruled tables with pdfplumber."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ingest.boilerplate import BoilerplateReport, strip_boilerplate
from ingest.errors import CORRUPT, EMPTY, NO_TEXT_LAYER, PASSWORD_REQUIRED, TOO_LARGE, IngestError
from ingest.ocr import OcrUnavailable
from ingest.scan import PageScanner, ScannedPage, SkippedPage
from ingest.tables import Table
from ingest.textlayer import is_misdecoded, word_share
from rag.analysis import fold_accents
from rag.types import Element, ElementType

log = logging.getLogger(__name__)

# A page line is treated as part of a table (and left out of the page text) when at least this
# share of its words are cell words of a table on the same page.
_TABLE_LINE_OVERLAP = 0.8
# Heading levels by keyword (accent-folded); unknown kinds sit at the article level.
_LEVELS = {"titulo": 0, "anexo": 0, "capitulo": 1, "chapter": 1, "seccion": 2, "section": 2, "annex": 0,
           "articulo": 3, "article": 3, "disposicion": 3}
_TEXT_STRATEGY = {"vertical_strategy": "text", "horizontal_strategy": "text"}
_TURNED_PAGE = 0.6  # share of glyphs turned the same way that makes a page sideways (read turned upright)
_STUB_WIDTH = 0.3  # row labels left of a ruled table are looked for within this share of the page width
_FIGURE_PAGE = 0.15  # share of figure words that makes a page worth searching for unruled tables
_PATH_OPERATOR = re.compile(rb"\s(?:re|l)\s")  # rectangle / line-to: what table rulings are drawn with
_NUM = rb"(-?\d*\.?\d+)"
_RECT = re.compile(rb"%s\s+%s\s+%s\s+%s\s+re\b" % (_NUM, _NUM, _NUM, _NUM))
_LINE = re.compile(rb"%s\s+%s\s+m\s+%s\s+%s\s+l\b" % (_NUM, _NUM, _NUM, _NUM))
_TABLE_PATH_OPS = 8  # drawing operators beyond a page's usual decoration that may be a ruled table
_FIGURE = re.compile(r"[\d.,:%$€()\-–+/ ]+")  # numbers, amounts, percentages, times, dates
_TOC_LEADER = re.compile(r"(\.\s?){4,}\s*\d+\s*$")  # "Artículo 49. Límites ........ 36" is a contents line
# Numbered headings in statutes and manuals: "Artículo 20. Resolución.", "CAPÍTULO II", "Article 3".
_HEADING = re.compile(
    r"^\s*((art[íi]culo|cap[íi]tulo|t[íi]tulo|secci[óo]n|disposici[óo]n (adicional|transitoria|derogatoria|final)"
    r"|anexo|article|chapter|section|annex)\s+([0-9]+|[IVXLC]+|[a-záéíóú]+)\b.{0,120})$", re.IGNORECASE)


class PdfParser:
    """Turns a PDF into page-text and table elements.

    >>> PdfParser().parse(Path("leaflet.pdf"), "leaflet.pdf")[0].page
    1
    """

    # 3: tables with a title, multi-row headers joined, merged rows split, row spans filled; 4: OCR of scans;
    # 7: running blocks anywhere on the page, verification stamps and contents pages taken out
    base_version = "pdf-7"

    def __init__(self, passwords: list[str] | None = None, password_map: dict[str, str] | None = None,
                 scanner: PageScanner | None = None, max_pages: int = 10_000) -> None:
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages}")
        self.max_pages = max_pages
        self.passwords = list(passwords or [])
        self.password_map = dict(password_map or {})
        self.scanner = scanner  # None: no OCR; pages without a text layer are reported and skipped
        self.warnings: list[str] = []  # about the last parsed file, e.g. pages without a text layer
        self.scanned: dict[int, ScannedPage] = {}  # the last parsed file's pages read by OCR, by page number
        self.skipped: list[SkippedPage] = []  # the last parsed file's pages OCR gave nothing for
        self.boilerplate = BoilerplateReport()  # the last parsed file's running blocks and contents lines

    @property
    def version(self) -> str:
        return f"{self.base_version}+ocr:{self.scanner.version if self.scanner else 'off'}"

    def parse(self, path: Path, source: str) -> list[Element]:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        if path.stat().st_size == 0:
            raise IngestError(source, EMPTY, "0-byte file")
        try:
            self.warnings = []
            self.scanned = {}
            self.skipped = []
            self.boilerplate = BoilerplateReport()
            reader = PdfReader(path, strict=False)
            password = self._unlock(reader, source, path.name)
            if len(reader.pages) > self.max_pages:  # parse time and memory are bounded per file
                raise IngestError(source, TOO_LARGE, f"{len(reader.pages)} pages; at most {self.max_pages} are read "
                                                     "(RAG_MAX_PAGES)")
            page_texts = [_clean(page.extract_text() or "") for page in reader.pages]
        except IngestError:
            raise
        except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
                RecursionError) as exc:  # a reference loop in the page tree ends in RecursionError
            raise IngestError(source, CORRUPT, f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if not page_texts:
            raise IngestError(source, EMPTY, "no pages")
        _repair_garbled(path, password, page_texts)
        self.scanned = self._read_scans(path, source, password, page_texts)
        ocr_tables = {n: list(page.layout.tables) for n, page in self.scanned.items() if page.layout.tables}
        for number, page in self.scanned.items():
            page_texts[number - 1] = page.layout.text
        if not any(t.strip() for t in page_texts) and not ocr_tables:
            detail = f"{len(page_texts)} pages without extractable text"
            if self.scanned or self.skipped:
                detail += "; OCR found none either"
            if self.skipped:  # each page and why: "p.2 (blank: one colour)"
                detail += ": " + ", ".join(map(str, self.skipped))
            raise IngestError(source, NO_TEXT_LAYER, detail)

        # pdfplumber is most of the parsing time: only pages that draw more than the document's usual
        # decoration (a ruled table) or are figure-heavy (an unruled one) are searched for tables.
        drawn = [_path_operators(page) for page in reader.pages]
        usual = min(drawn) if len(drawn) >= 3 else 0
        candidates = {n for n, (ops, text, page) in enumerate(zip(drawn, page_texts, reader.pages, strict=True),
                                                              start=1)
                      if n not in self.scanned and ((ops - usual >= _TABLE_PATH_OPS and _may_be_ruled(page))
                                                    or _figure_share(text) >= _FIGURE_PAGE)}
        tables = self.tables(path, source, password, page_texts, candidates) if candidates else {}
        tables.update(ocr_tables)
        elements, self.boilerplate = elements_and_boilerplate(source, page_texts, tables,
                                                              _outline_by_page(reader, len(page_texts)))
        return elements

    def _read_scans(self, path: Path, source: str, password: str | None,
                    page_texts: list[str]) -> dict[int, ScannedPage]:
        """Pages read by OCR, by number; pages OCR gave nothing for (blank, or the engine failed on them) go
        to ``skipped``, and failures to the warnings."""
        blank = [n for n, t in enumerate(page_texts, start=1) if not t.strip()]
        if self.scanner is None or not self.scanner.enabled:
            if blank:
                self.warnings.append(f"no text layer on page(s) {_ranges(blank)} (scanned images; OCR is off)")
            return {}
        try:
            wanted = self.scanner.pages_to_read(path, password, page_texts)
            if not wanted:
                return {}
            self.scanner.check()
            result = self.scanner.read_pdf(path, password, page_texts, wanted)
        except OcrUnavailable as exc:
            if blank:
                self.warnings.append(f"no text layer on page(s) {_ranges(blank)}, and OCR cannot run: {exc}")
            return {}
        except Exception as exc:  # noqa: BLE001 - pdfium cannot open the file: its text layer stands
            log.warning("%s: OCR failed (%s: %s)", source, type(exc).__name__, exc)
            self.warnings.append(f"OCR failed on this file ({type(exc).__name__}: {exc}); its text layer kept")
            return {}
        self.skipped = result.skipped
        self.warnings.extend(f"OCR failed on page {p.number} ({p.reason}); "
                             + ("its text layer kept" if page_texts[p.number - 1].strip() else "page skipped")
                             for p in result.failed)
        scanned = {page.number: page for page in result.pages}
        empty = [n for n, page in scanned.items() if not page.layout.text.strip() and not page.layout.tables]
        if empty:
            self.warnings.append(f"OCR found no text on page(s) {_ranges(empty)}")
        return scanned

    def _unlock(self, reader, source: str, name: str) -> str | None:
        if not reader.is_encrypted:
            return None
        specific = [self.password_map[k] for k in (source, name) if k in self.password_map]
        for password in ["", *specific, *self.passwords]:
            try:
                if reader.decrypt(password):
                    return password
            except Exception as exc:  # noqa: BLE001 - pypdf raises several types for bad keys/ciphers
                log.debug("%s: decrypt failed: %s", source, exc)
        raise IngestError(source, PASSWORD_REQUIRED, "add it to RAG_PDF_PASSWORD_MAP or RAG_PDF_PASSWORDS")

    def tables(self, path: Path, source: str, password: str | None = None, page_texts: list[str] | None = None,
               pages: set[int] | None = None) -> dict[int, list[Table]]:
        """Tables by 1-based page number, looking only at ``pages`` when given. ``page_texts`` (pypdf's)
        lets prose pages skip the costly search for unruled tables."""
        import pdfplumber

        found: dict[int, list[Table]] = {}
        try:
            with pdfplumber.open(path, password=password or "") as pdf:
                for number, page in enumerate(pdf.pages, start=1):
                    if pages is not None and number not in pages:
                        continue
                    turn, turned = _text_direction(page.chars)
                    if turn:
                        # The page's text runs sideways or upside down: read it from a copy turned upright
                        # (pdfminer applies /Rotate to every glyph and ruling), so rows stay rows.
                        page.flush_cache()
                        page_tables = _upright_tables(path, number, turn, password)
                    else:
                        figures = page_texts is None or _figure_share(page_texts[number - 1]) >= _FIGURE_PAGE
                        page_tables = _page_tables(page, turned, figures)
                        page.flush_cache()  # pdfplumber keeps every parsed page otherwise
                    if page_tables:
                        found[number] = page_tables
        except Exception as exc:  # noqa: BLE001 - tables are a bonus; the page text still stands
            log.warning("%s: table extraction failed (%s); page text kept", source, exc)
        return found


def _direction(char: dict) -> int:
    """The clockwise turn (0, 90, 180, 270) that sets a glyph upright, from its text matrix."""
    a, b = char.get("matrix", (1, 0))[:2]
    if abs(a) >= abs(b):
        return 0 if a >= 0 else 180
    return 90 if b > 0 else 270  # b > 0: the baseline runs up the page (text turned anticlockwise)


def _text_direction(chars: list[dict]) -> tuple[int, int]:
    """How a page's text runs: (the turn that sets the whole page upright when most of its glyphs are turned
    the same way, as in a table printed sideways; else 0), and the commonest turn of its turned glyphs
    (vertical column headers; 0 when none)."""
    counts: dict[int, int] = {}
    for char in chars:
        turn = _direction(char)
        counts[turn] = counts.get(turn, 0) + 1
    turned = max((t for t in counts if t), key=lambda t: counts[t], default=0)
    if turned and counts[turned] >= _TURNED_PAGE * len(chars):
        return turned, turned
    return 0, turned


# pdfplumber's reading order for a cell of glyphs turned a quarter: text turned anticlockwise runs up the page
# and its lines follow left to right; turned clockwise, it runs down and its lines follow right to left.
_TURNED_READING = {90: {"line_dir": "ltr", "char_dir": "btt"}, 270: {"line_dir": "rtl", "char_dir": "ttb"}}


def _extract_tables(page, turned: int) -> list[list[list[str | None]]]:
    """pdfplumber's ruled tables, with cells of vertical text (turned a quarter) read the right way round
    (by default pdfplumber renders them reversed or one word per line: "sretov deretsigeR") and row labels
    that stand outside the rulings brought in."""
    tables = page.find_tables()
    grids = [table.extract() for table in tables]
    if tables and turned in _TURNED_READING:
        _read_turned_cells(page, tables, grids, turned)
    if tables:
        words = page.extract_words()
        grids = [_with_row_labels(table, grid, words) for table, grid in zip(tables, grids, strict=True)]
    return grids


def _read_turned_cells(page, tables: list, grids: list[list[list[str | None]]], turned: int) -> None:
    """Cells of vertical text (glyphs turned a quarter) read again the right way round, in place."""
    reading = _TURNED_READING[turned]
    from pdfplumber.utils import extract_text

    chars = page.chars
    turned_chars = [c for c in chars if _direction(c) == turned]
    for table, grid in zip(tables, grids, strict=True):
        for row, cells in zip(table.rows, grid, strict=True):
            for j, box in enumerate(row.cells):
                if box is None or not any(_centre_in(c, box) for c in turned_chars):
                    continue
                in_cell = [c for c in chars if _centre_in(c, box)]
                if 2 * sum(1 for c in in_cell if _direction(c) == turned) > len(in_cell):
                    cells[j] = extract_text(in_cell, **reading, line_dir_rotated=reading["line_dir"],
                                            char_dir_rotated=reading["char_dir"], line_dir_render="ttb",
                                            char_dir_render="ltr")


def _page_tables(page, turned: int, figures: bool) -> list[Table]:
    """A pdfplumber page's tables: ruled ones, else unruled ones when the page is rich in figures."""
    ruled = [t for t in map(Table.from_cells, _extract_tables(page, turned))
             if t is not None and t.rows and len(t.header) > 1]
    if sum(len(t.rows) for t in ruled) < 3 and figures and page.chars:
        # Unruled ("stream") tables, or only a ruled fragment: pdfplumber's text strategy,
        # kept only when it looks like a table of figures (it also slices prose into columns).
        stream = [t for t in map(Table.from_cells, _stream_tables(page)) if t is not None and _looks_tabular(t)]
        ruled = stream or ruled
    return ruled


def _with_row_labels(table, grid: list[list[str | None]], words: list[dict]) -> list[list[str | None]]:
    """A ruled table whose row labels stand left of its rulings (an unruled stub column: "Alcona | 963 |
    439 …") gets them back as its first column; otherwise each row would lose the entity it is about. Kept
    only when most rows that hold figures find a label on their own line."""
    x0, top, _, bottom = table.bbox
    reach = x0 - _STUB_WIDTH * table.page.width
    left = [w for w in words if reach <= w["x0"] and w["x1"] <= x0 + 1
            and top <= (w["top"] + w["bottom"]) / 2 <= bottom]
    if not left:
        return grid
    labels: list[str] = []
    starts: list[float] = []
    for row in table.rows:
        _, r_top, _, r_bottom = row.bbox
        inside = sorted((w for w in left if r_top <= (w["top"] + w["bottom"]) / 2 < r_bottom),
                        key=lambda w: (round(w["top"]), w["x0"]))
        labels.append(" ".join(w["text"] for w in inside))
        starts.append(min((w["x0"] for w in inside), default=-1.0))
    figured = [i for i, cells in enumerate(grid) if any(_FIGURE.fullmatch(c or "") and (c or "").strip()
                                                        for c in cells)]
    labelled = [i for i in figured if labels[i]]
    if not figured or 2 * len(labelled) <= len(figured):
        return grid
    # A stub column is aligned: its labels start at one x (the right end of a prose column beside the table,
    # cut at `reach`, is not).
    first = sorted(starts[i] for i in labelled)[len(labelled) // 2]
    if 2 * sum(1 for i in labelled if abs(starts[i] - first) <= 2) <= len(labelled):
        return grid
    return [[label, *cells] for label, cells in zip(labels, grid, strict=True)]


def _upright_tables(path: Path, number: int, turn: int, password: str | None) -> list[Table]:
    """The tables of page ``number`` read from an in-memory copy of it turned ``turn`` degrees clockwise."""
    import io

    import pdfplumber
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(path, strict=False)
    if reader.is_encrypted:
        reader.decrypt(password or "")
    writer = PdfWriter()
    writer.add_page(reader.pages[number - 1])
    writer.pages[0].rotate(turn)
    buffer = io.BytesIO()
    writer.write(buffer)
    buffer.seek(0)
    with pdfplumber.open(buffer) as pdf:
        page = pdf.pages[0]
        figures = _figure_share(page.extract_text() or "") >= _FIGURE_PAGE
        return _page_tables(page, _text_direction(page.chars)[1], figures)


def page_elements(source: str, page_texts: list[str], tables: dict[int, list[Table]],
                  outline: dict[int, str] | None = None) -> list[Element]:
    """Pages (text and tables, by 1-based number) to elements: running blocks, stamps and contents pages
    dropped, numbered headings ("Artículo 20. Resolución.") as titles, each element under the outline and
    headings in force."""
    return elements_and_boilerplate(source, page_texts, tables, outline)[0]


def elements_and_boilerplate(source: str, page_texts: list[str], tables: dict[int, list[Table]],
                             outline: dict[int, str] | None = None,
                             ) -> tuple[list[Element], BoilerplateReport]:
    """``page_elements``, and the report of what was dropped (``ingest.boilerplate``)."""
    outline = outline or {}
    stripped = strip_boilerplate(page_texts, _HEADING)
    elements: list[Element] = []
    headings: dict[int, str] = {}  # level -> heading text in force
    for number, text in enumerate(stripped.texts, start=1):
        page_tables = [t for t in tables.get(number, [])
                       if not stripped.takes_table(number, t.words(), t.to_markdown())]
        text = _drop_table_lines(text, page_tables)
        base = outline.get(number)
        block: list[str] = []
        for line in text.splitlines():
            match = _HEADING.match(line)
            if match and not _TOC_LEADER.search(line):
                _flush(elements, block, source, number, _path(base, headings))
                level = _LEVELS.get(fold_accents(match.group(2).split()[0]), 3)
                headings = {lv: h for lv, h in headings.items() if lv < level}
                headings[level] = " ".join(match.group(1).split())
                elements.append(Element(headings[level], source, number, ElementType.TITLE,
                                        _path(base, headings)))
            else:
                block.append(line)
        _flush(elements, block, source, number, _path(base, headings))
        for t_index, table in enumerate(page_tables, start=1):
            elements.append(Element(table.to_markdown(), source, number, ElementType.TABLE,
                                    _path(base, headings), table_id=f"p{number}-t{t_index}"))
    return elements, stripped.report


def _centre_in(obj: dict, box: tuple) -> bool:
    """Whether a pdfplumber char's or word's centre lies in ``box`` (x0, top, x1, bottom)."""
    x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def _stream_tables(page) -> list[list[list[str]]]:
    """Unruled tables by pdfplumber's text strategy, with whole words per cell.

    pdfplumber fills cells character by character, so a column edge guessed inside a word cuts it
    ("Fema" | "le"); here each word goes, whole, to the cell holding its centre.
    """
    words = page.extract_words()
    grids = []
    for table in page.find_tables(_TEXT_STRATEGY):
        rows = [[cell for cell in row.cells] for row in table.rows]
        grid: list[list[list[str]]] = [[[] for _ in row] for row in rows]
        for word in words:
            for i, row in enumerate(rows):
                for j, cell in enumerate(row):
                    if cell is not None and _centre_in(word, cell):
                        grid[i][j].append(word["text"])
                        break
                else:
                    continue
                break
        grids.append([[" ".join(cell) for cell in row] for row in grid])
    return grids



def _drop_table_lines(text: str, tables: list[Table]) -> str:
    if not tables:
        return text
    cell_words = set().union(*(t.words() for t in tables))
    kept = []
    for line in text.splitlines():
        words = re.findall(r"\S+", line)
        if words and sum(w in cell_words for w in words) / len(words) >= _TABLE_LINE_OVERLAP:
            continue
        kept.append(line)
    return "\n".join(kept)


_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_LINE_HYPHEN = re.compile(r"(\w)-\n(\w)")


def _repair_garbled(path: Path, password: str | None, page_texts: list[str]) -> None:
    """Pages whose pypdf text is mostly implausible words ("Yerala", "Tamilm#adu": a font whose character map
    pypdf misreads) are read again with pdfium, which decodes such fonts and orders turned text; its text is
    kept when more of it is plausible words. In place."""
    garbled = [n for n, text in enumerate(page_texts) if is_misdecoded(text)]
    if not garbled:
        return
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(path, password=password)
    except pdfium.PdfiumError:
        return
    try:
        for n in garbled:
            # pdfium marks a hyphen at a line end with U+FFFE
            text = _clean(pdf[n].get_textpage().get_text_range().replace("\r\n", "\n").replace("\ufffe", "-"))
            if word_share(text) > word_share(page_texts[n]):
                page_texts[n] = text
    finally:
        pdf.close()


def _clean(text: str) -> str:
    """Ligature glyphs to letters; words hyphenated across a line break joined again."""
    text = text.translate(_LIGATURES)
    return _LINE_HYPHEN.sub(lambda m: m.group(1) + m.group(2) if m.group(2).islower() else m.group(0), text)


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def _drawings(page) -> list[bytes]:
    """The page's content stream and its form XObjects' (Word and Visio exports place drawings there)."""
    contents = page.get_contents()
    streams = [contents.get_data()] if contents is not None else []
    xobjects = (page.get("/Resources") or {}).get("/XObject") or {}
    for ref in xobjects.values():
        form = ref.get_object()
        if form.get("/Subtype") == "/Form":
            streams.append(form.get_data())
    return streams


def _path_operators(page) -> int:
    """Rectangles and lines the page's content stream draws (table rulings are drawn with them)."""
    try:
        return sum(len(_PATH_OPERATOR.findall(data)) for data in _drawings(page))
    except Exception:  # noqa: BLE001 - unreadable stream: let pdfplumber look
        return _TABLE_PATH_OPS


def _may_be_ruled(page) -> bool:
    """Whether the drawing could be a ruled table: two or more horizontal rules and three vertical ones
    (thin rectangles or straight lines), three horizontal rules (booktabs style), or a grid of cell
    rectangles. Decorative boxes (a framed note is two and two) and curves fail it, and pdfplumber is
    spared those pages."""
    try:
        streams = _drawings(page)
    except Exception:  # noqa: BLE001 - unreadable stream: let pdfplumber look
        return True
    horizontal: set[int] = set()
    vertical: set[int] = set()
    cells = 0
    for data in streams:
        for x, y, w, h in ((float(a) for a in m) for m in _RECT.findall(data)):
            # By shape, not size: some producers draw in scaled units (a 0.1 matrix, 4.8-unit rules).
            if abs(w) > 10 and abs(h) < abs(w) / 20:
                horizontal.add(round(y))
            elif abs(h) > 10 and abs(w) < abs(h) / 20:
                vertical.add(round(x))
            elif abs(w) > 10 and abs(h) > 5:
                cells += 1
        for x1, y1, x2, y2 in ((float(a) for a in m) for m in _LINE.findall(data)):
            if abs(x1 - x2) > 10 and abs(y1 - y2) < abs(x1 - x2) / 50:
                horizontal.add(round(y1))
            elif abs(y1 - y2) > 10 and abs(x1 - x2) < abs(y1 - y2) / 50:
                vertical.add(round(x1))
    return (len(horizontal) >= 2 and len(vertical) >= 3) or len(horizontal) >= 3 or cells >= 4


def _figure_share(text: str) -> float:
    """Share of a page's words that are figures; contents lines ("Artículo 49 ....... 36") don't count."""
    words = [w for line in text.splitlines() if not _TOC_LEADER.search(line) for w in line.split()]
    return sum(bool(_FIGURE.fullmatch(w)) and any(c.isdigit() for c in w) for w in words) / len(words) if words else 0.0


def _looks_tabular(table: Table) -> bool:
    """At least 3 columns and 3 rows, and at least a fifth of the filled cells are figures."""
    cells = [c for row in (table.header, *table.rows) for c in row if c]
    if len(table.header) < 3 or len(table.rows) < 3 or not cells:
        return False
    return sum(bool(_FIGURE.fullmatch(c)) and any(ch.isdigit() for ch in c) for c in cells) / len(cells) >= 0.2


def _flush(elements: list[Element], block: list[str], source: str, page: int, section: str | None) -> None:
    text = "\n".join(block).strip()
    if text:
        elements.append(Element(text, source, page, ElementType.TEXT, section))
    block.clear()


def _path(base: str | None, headings: dict[int, str]) -> str | None:
    """Outline path, then the numbered headings in force by level (Título > Capítulo > Artículo).

    Outline leaves that are themselves numbered headings give way to the headings found in the text.
    """
    parts = base.split(" > ") if base else []
    if headings:
        while parts and _HEADING.match(parts[-1]):
            parts.pop()
        parts += [headings[level] for level in sorted(headings)]
    return " > ".join(parts) or None


def _outline_by_page(reader, pages: int) -> dict[int, str]:
    """The outline (bookmarks) path in force at the start of each page, e.g. "Título I > Capítulo II"."""
    marks: list[tuple[int, int, str]] = []

    def walk(items, depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item) + 1
            except Exception:  # noqa: BLE001 - a broken bookmark is skipped, not fatal
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title and page >= 1:
                marks.append((page, len(marks), f"{depth}\x00{title}"))

    try:
        walk(reader.outline, 0)
    except Exception:  # noqa: BLE001 - no or unreadable outline: sections come from headings only
        return {}
    marks.sort()
    by_page: dict[int, str] = {}
    stack: list[tuple[int, str]] = []
    at = 0
    for page in range(1, pages + 1):
        while at < len(marks) and marks[at][0] <= page:
            depth_s, title = marks[at][2].split("\x00", 1)
            depth = int(depth_s)
            stack = [(d, t) for d, t in stack if d < depth] + [(depth, title)]
            at += 1
        if stack:
            by_page[page] = " > ".join(t for _, t in stack)
    return by_page
