"""Tables as tables: a header row plus data rows, rendered as Markdown, never flattened into prose.

Extractors hand over raw cell grids in which a caption fills the first row's one cell, a header spans
several rows ("Percent Fuel Savings" over "Improved Speed" and "Decreased Idle") and a data row sometimes
comes out as one cell holding all its values. ``Table.from_cells`` turns such a grid into a title, one
header row whose column names join the header cells top to bottom ("Percent Fuel Savings › Improved
Speed") and data rows split into their columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMERIC = re.compile(r"^[\s$€£(]*[-+]?\d[\d,. ]*%?\)?$")
MAX_HEADER_ROWS = 4
HEADER_JOIN = " › "


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""

    @classmethod
    def from_cells(cls, cells: list[list[str | None]]) -> Table | None:
        """Clean a raw cell grid (None for merged/empty cells); None when nothing is left."""
        grid = [[_clean(c) for c in row] for row in cells if row and any(_clean(c) for c in row)]
        if not grid:
            return None
        width = max(len(r) for r in grid)
        grid = [r + [""] * (width - len(r)) for r in grid]
        keep = [j for j in range(width) if any(r[j] for r in grid)]  # drop empty columns
        grid = [[r[j] for j in keep] for r in grid]
        width = len(keep)
        title: list[str] = []
        while len(grid) > 2 and width > 2 and sum(1 for c in grid[0] if c) == 1:  # a caption fills one cell
            title.append(next(c for c in grid[0] if c))
            grid = grid[1:]
        grid = [split_merged_row(r) for r in grid]
        depth = header_depth(grid)
        header = column_names(grid[:depth], width) if depth > 1 else grid[0]
        return cls(tuple(header), tuple(tuple(r) for r in fill_row_spans(grid[depth:])), " ".join(title))

    def words(self) -> set[str]:
        return {w for cell in (*self.header, *(c for r in self.rows for c in r)) for w in cell.split()}

    def to_markdown(self, rows: tuple[tuple[str, ...], ...] | None = None) -> str:
        """The title (when there is one) on its own line, then the header row, separator and rows."""
        rows = self.rows if rows is None else rows
        lines = [self.title] if self.title else []
        lines += [_md_row(self.header), "|" + "|".join("---" for _ in self.header) + "|"]
        lines.extend(_md_row(r) for r in rows)
        return "\n".join(lines)


def is_data_row(row: list[str]) -> bool:
    """A row that names something in its first cell and holds a number in another."""
    return bool(row and row[0] and any(_NUMERIC.match(c) for c in row[1:] if c))


def header_depth(grid: list[list[str]]) -> int:
    """Rows that form the header: one, or all rows above the first data row when the first row spans
    (has empty cells) and a data row follows within ``MAX_HEADER_ROWS``."""
    if len(grid) < 3 or all(grid[0]):
        return 1
    first = next((i for i, row in enumerate(grid[:MAX_HEADER_ROWS + 1]) if is_data_row(row)), None)
    return first if first and first > 1 else 1


def column_names(header: list[list[str]], width: int) -> list[str]:
    """Column names from header rows: a group label (a cell with sub-headers under it) is carried right over
    the empty cells under which a lower header row names something; a column's cells are joined top to
    bottom. A label with nothing under it spans rows, not columns, and is not carried."""
    names: list[list[str]] = [[] for _ in range(width)]
    for depth, row in enumerate(header):
        carried = ""
        for j in range(width):
            cell = row[j] if j < len(row) else ""
            below = any(j < len(r) and r[j] for r in header[depth + 1:])
            if cell:
                carried = cell if below else ""
            elif carried and below:
                cell = carried
            if cell:
                names[j].append(cell)
    return [HEADER_JOIN.join(n) for n in names]


def fill_row_spans(rows: list[list[str]]) -> list[list[str]]:
    """Cells that span rows ("GMC" over three plans) come out in their first row only: a row whose leading
    cells are empty while it holds values further right gets them from the row above, so that each row
    names its entity on its own."""
    filled: list[list[str]] = []
    for row in rows:
        row = list(row)
        first = next((j for j, c in enumerate(row) if c), len(row))
        if filled and 0 < first < len(row) - 1 and all(filled[-1][j] and not _NUMERIC.match(filled[-1][j])
                                                       for j in range(first)):
            row[:first] = filled[-1][:first]
        filled.append(row)
    return filled


def split_merged_row(row: list[str]) -> list[str]:
    """A data row that came out as one cell ("Tamil Nadu 2400 21.4 2.3") split into the columns, when its
    trailing numbers fill every other column exactly."""
    filled = [c for c in row if c]
    if len(row) < 3 or len(filled) != 1:
        return row
    tokens = filled[0].split()
    numbers = 0
    while numbers < len(tokens) and _NUMERIC.match(tokens[len(tokens) - 1 - numbers]):
        numbers += 1
    text = " ".join(tokens[:len(tokens) - numbers])
    if text and numbers == len(row) - 1:
        return [text, *tokens[len(tokens) - numbers:]]
    if not text and numbers == len(row):
        return tokens
    return row


def _clean(cell: str | None) -> str:
    return re.sub(r"\s+", " ", cell or "").strip()


def _md_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def html_table_to_table(html: str) -> Table | None:
    """Parse the ``text_as_html`` that unstructured gives its Table elements."""
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(html)
    except Exception:  # noqa: BLE001 - malformed HTML from a broken document: no table
        return None
    cells = [[" ".join(td.itertext()) for td in tr.xpath("./th|./td")] for tr in root.iter("tr")]
    return Table.from_cells(cells)


def markdown_cells(line: str) -> list[str]:
    """The cells of one Markdown table row written by ``Table.to_markdown``."""
    inner = line.strip()[1:-1] if line.strip().startswith("|") else line
    cells = re.split(r"(?<!\\)\|", inner)
    return [c.strip().replace("\\|", "|") for c in cells]
