"""Tables as tables: a header row plus data rows, rendered as Markdown, never flattened into prose."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

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
        return cls(tuple(grid[0]), tuple(tuple(r) for r in grid[1:]))

    def words(self) -> set[str]:
        return {w for cell in (*self.header, *(c for r in self.rows for c in r)) for w in cell.split()}

    def to_markdown(self, rows: tuple[tuple[str, ...], ...] | None = None) -> str:
        rows = self.rows if rows is None else rows
        lines = [_md_row(self.header), "|" + "|".join("---" for _ in self.header) + "|"]
        lines.extend(_md_row(r) for r in rows)
        return "\n".join(lines)


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
