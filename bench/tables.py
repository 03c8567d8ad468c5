"""Table extraction recall against the camelot / tabula / pdfplumber ground truth in shared/.

For each expected table: the share of its non-empty cells found among the cells we extract on the
same page. "exact": equal after whitespace normalisation; "lenient": also counted when one of our
cells contains it (we merged two of its cells). Rotated-text files are reported apart.

Usage: python -m bench.tables [--shared ../shared]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from ingest.pdf import PdfParser
from ingest.tables import HEADER_JOIN

ROTATED = {"camelot_anticlockwise_table_1.pdf", "camelot_clockwise_table_2.pdf", "camelot_vertical_header.pdf"}


def _norm(cell: str) -> str:
    return " ".join(str(cell).split())


def expected_tables(folder: Path) -> dict[str, list[tuple[int, list[list[str]]]]]:
    """pdf name -> [(page, rows)]; the camelot JSON tables and tabula's CSV."""
    found: dict[str, list[tuple[int, list[list[str]]]]] = {}
    for spec in sorted(folder.glob("*.expected.json")):
        data = json.loads(spec.read_text(encoding="utf-8"))
        if "tables" in data:
            seen = set()
            for table in data["tables"]:
                key = (table["page"], json.dumps(table["rows"]))
                if key not in seen:  # camelot tests several flavours of the same table
                    seen.add(key)
                    found.setdefault(data["pdf"], []).append((int(table["page"]), table["rows"]))
        elif "expected_csv" in data:
            rows = list(csv.reader((folder / data["expected_csv"]).open(encoding="utf-8")))
            found.setdefault(data["pdf"], []).append((int(data["page"]), rows))
    return found


def recall(expected: list[list[str]], cells: list[str]) -> tuple[int, int, int]:
    wanted = [_norm(c) for row in expected for c in row if _norm(c)]
    exact_set = set(cells)
    exact = sum(c in exact_set for c in wanted)
    lenient = sum(c in exact_set or any(c in have for have in cells) for c in wanted)
    return len(wanted), exact, lenient


def main() -> None:
    parser = argparse.ArgumentParser(description="table cell recall")
    parser.add_argument("--shared", default="../shared")
    folder = Path(parser.parse_args().shared) / "corpus" / "pdf_tables"
    pdf = PdfParser()
    totals = {"upright": [0, 0, 0], "rotated": [0, 0, 0]}
    print(f"{'file':<44} {'cells':>6} {'exact':>7} {'lenient':>8} {'sec':>6}")
    for name, tables in expected_tables(folder).items():
        started = time.perf_counter()
        extracted = pdf.tables(folder / name, name)
        n = e = l = 0
        for page, rows in tables:
            # joined header names ("A › B") count by their parts, the cells of the ground truth's header rows
            cells = [_norm(part) for t in extracted.get(page, []) for c in (*t.header, *(x for r in t.rows for x in r))
                     for part in c.split(HEADER_JOIN)]
            a, b, c = recall(rows, [c for c in cells if c])
            n, e, l = n + a, e + b, l + c
        group = "rotated" if name in ROTATED else "upright"
        for i, v in enumerate((n, e, l)):
            totals[group][i] += v
        print(f"{name:<44} {n:>6} {e / n:>7.3f} {l / n:>8.3f} {time.perf_counter() - started:>6.2f}")
    for group, (n, e, l) in totals.items():
        print(f"{'OVERALL ' + group:<44} {n:>6} {e / n:>7.3f} {l / n:>8.3f}")


if __name__ == "__main__":
    main()
