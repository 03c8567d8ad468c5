"""Recognised words back into a page: lines in reading order (columns read one after the other) and
tables whose rows stay rows, from the words' boxes alone."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ingest.ocr import OcrPage, OcrWord
from ingest.tables import Table

_SPANNING = 0.6  # a line wider than this share of the page crosses any column gutter (a title, a footer)
_CELL_GAP = 1.2  # a gap wider than this many line heights separates two table cells on one row
_TABLE_MIN_ROWS = 3
_TABLE_MIN_COLUMNS = 3
_TABLE_GAP_ROWS = 3  # rows with fewer cells (a header's or a cell's further lines) a table may run across
_FIGURE = re.compile(r"^[\s$€£(]*[-+]?\d[\d,.:/ ]*%?\)?[.,;]?$")


@dataclass(frozen=True)
class PageLayout:
    """A recognised page: its prose in reading order and its tables."""

    text: str
    tables: tuple[Table, ...]


def reading_order(boxes: list[tuple[float, float, float, float]]) -> list[int]:
    """Indices of line boxes (x0, y0, x1, y1 as page shares) in reading order: top to bottom, and where the
    page has two columns, the left column before the right one between lines that span both."""
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    result: list[int] = []
    band: list[int] = []

    def flush() -> None:
        gutter = _gutter([boxes[i] for i in band])
        if gutter is None:
            result.extend(band)
        else:
            result.extend([i for i in band if boxes[i][2] <= gutter] + [i for i in band if boxes[i][2] > gutter])
        band.clear()

    for i in order:
        if boxes[i][2] - boxes[i][0] > _SPANNING:
            flush()
            result.append(i)
        else:
            band.append(i)
    flush()
    return result


def _gutter(boxes: list[tuple[float, float, float, float]]) -> float | None:
    """An x between 0.3 and 0.7 that no line crosses, with a fifth of the lines or more on each side."""
    if len(boxes) < 6:
        return None
    for x in np.arange(0.30, 0.701, 0.01):
        if any(b[0] < x < b[2] for b in boxes):
            continue
        left = sum(b[2] <= x for b in boxes)
        if min(left, len(boxes) - left) >= len(boxes) / 5:
            return float(x)
    return None


def page_layout(page: OcrPage) -> PageLayout:
    """Prose lines (the engine's reading order) and tables: runs of rows with three or more cells apart,
    across up to _TABLE_GAP_ROWS rows with fewer (a header's or a cell's further lines)."""
    rows = _visual_rows(list(page.words))
    split = [_cells(row) for row in rows]
    tabular = [len(cells) >= _TABLE_MIN_COLUMNS for cells in split]
    tables: list[Table] = []
    in_tables: set[int] = set()
    i = 0
    while i < len(rows):
        if not tabular[i]:
            i += 1
            continue
        end = i + 1
        while end < len(rows) and any(tabular[k] for k in _next_rows(rows, end, _TABLE_GAP_ROWS + 1)):
            end += 1
        run = [j for j in range(i, end) if tabular[j]]
        table = _table([split[j] for j in run], rows[i:end]) if len(run) >= _TABLE_MIN_ROWS else None
        if table is not None:
            tables.append(table)
            in_tables.update(id(w) for row in rows[i:end] for w in row)
        i = end
    lines = [" ".join(w.text for w in line if id(w) not in in_tables) for line in page.lines()]
    return PageLayout("\n".join(line for line in lines if line.strip()), tuple(tables))


def _next_rows(rows: list[list[OcrWord]], start: int, count: int) -> list[int]:
    """Indices of the next ``count`` rows from ``start``, not counting specks (rows of one- or two-letter
    words, what is left of a box's corners or a stamp)."""
    found: list[int] = []
    for k in range(start, len(rows)):
        if len(found) == count:
            break
        found.append(k)
        if all(len(w.text) <= 2 and not any(c.isdigit() for c in w.text) for w in rows[k]):
            count += 1
    return found


def _visual_rows(words: list[OcrWord]) -> list[list[OcrWord]]:
    """Words grouped by the horizontal band they sit in, whatever line or block the engine gave them."""
    rows: list[list[OcrWord]] = []
    bands: list[tuple[float, float]] = []
    for word in sorted(words, key=lambda w: (w.box[1] + w.box[3]) / 2):
        centre = (word.box[1] + word.box[3]) / 2
        if bands and bands[-1][0] <= centre <= bands[-1][1]:
            rows[-1].append(word)
        else:
            rows.append([word])
            bands.append((word.box[1], word.box[3]))
    return [sorted(row, key=lambda w: w.box[0]) for row in rows]


def _cells(row: list[OcrWord]) -> list[list[OcrWord]]:
    """A row's words split where the gap is wider than _CELL_GAP line heights."""
    height = float(np.median([w.box[3] - w.box[1] for w in row]))
    cells = [[row[0]]]
    for before, word in zip(row, row[1:], strict=False):
        if word.box[0] - before.box[2] > _CELL_GAP * height:
            cells.append([word])
        else:
            cells[-1].append(word)
    return cells


def _table(tabular: list[list[list[OcrWord]]], rows: list[list[OcrWord]]) -> Table | None:
    """Columns are the x-ranges the tabular rows' cells cover (overlapping ranges merged); every word of
    the run goes to the column holding its centre, and a row with an empty first column continues the row
    above (a cell's second line). Kept when it looks like a table: short cells, or a fifth of them figures."""
    spans = sorted((cell[0].box[0], cell[-1].box[2]) for cells in tabular for cell in cells)
    columns: list[list[float]] = []
    for x0, x1 in spans:
        if columns and x0 <= columns[-1][1]:
            columns[-1][1] = max(columns[-1][1], x1)
        else:
            columns.append([x0, x1])
    if len(columns) < _TABLE_MIN_COLUMNS:
        return None
    grid: list[list[str]] = []
    for words in rows:
        row = [""] * len(columns)
        for word in words:
            centre = (word.box[0] + word.box[2]) / 2
            j = min(range(len(columns)), key=lambda k: _distance(centre, columns[k]))
            row[j] = f"{row[j]} {word.text}".strip()
        if grid and not row[0] and sum(bool(c) for c in row) < _TABLE_MIN_COLUMNS:
            grid[-1] = [f"{a} {b}".strip() for a, b in zip(grid[-1], row, strict=True)]
        else:
            grid.append(row)
    filled = [c for row in grid for c in row if c]
    figures = sum(bool(_FIGURE.match(c)) for c in filled) / len(filled)
    words_per_cell = sum(len(c.split()) for c in filled) / len(filled)
    if figures < 0.2 and words_per_cell > 4:
        return None  # prose in columns, not a table
    return Table.from_cells(grid)


def _distance(x: float, column: list[float]) -> float:
    return 0.0 if column[0] <= x <= column[1] else min(abs(x - column[0]), abs(x - column[1]))
