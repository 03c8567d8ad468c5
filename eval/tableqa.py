"""Table questions from the expected tables of the shared table PDFs: a row's entity and a column.

    python -m eval.tableqa ../shared/corpus/pdf_tables [--answer-mode extractive] [--out DIR]

For every expected table (``*.expected.json``, the camelot ground truth) the header rows are the rows
above the first data row (its first cell names something and another cell holds a number); a column's
name joins its header cells top to bottom ("Percent Fuel Savings › Improved Speed", a spanning cell
carried to the columns under it), a caption row (text in the first cell only) is left out. A row's
entity is its text cells joined ("GMC Sacramento Health Net"), kept when no other row has it. Up to
five numeric cells per table (at least three characters, so that the value says something) become
questions, alternately in English ("What is the <column> for <entity>?") and Spanish ("¿Cuál es el valor
de <column> para <entity>?"), with the cell's text as the accepted answer and the table's page.
Questions are built at run time from the shared files, so no third-party table is copied here.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from dataclasses import replace
from pathlib import Path

from eval.configs import EvalConfig
from eval.qa import QAItem
from eval.report import write_report
from eval.runner import Evaluator
from ingest.tables import column_names, is_data_row
from rag.offline import ensure_offline
from rag.settings import Settings

_NUMERIC = re.compile(r"^[\s$€£]*[-+]?\d[\d,. ]*%?$")
_LATIN = re.compile(r"[A-Za-zÁÉÍÓÚáéíóúÑñ]")
PER_TABLE = 5


_LEADER = re.compile(r"(?:\s*\.){3,}.*$")  # dotted leaders: "Violent crime . . . . . ."


def _clean(cell: object) -> str:
    return _LEADER.sub("", " ".join(str(cell or "").split())).strip(" –-")


def _is_data_row(row: list[str]) -> bool:
    return is_data_row(row) and bool(_LATIN.search(row[0]))


def table_items(name: str, table: dict, start: int) -> list[QAItem]:
    rows = [[_clean(c) for c in row] for row in table.get("rows", [])]
    first = next((i for i, row in enumerate(rows) if _is_data_row(row)), None)
    if first is None or first == 0 or first > 4:
        return []
    header = [r for r in rows[:first] if sum(1 for c in r if c) > 1]  # a caption fills one cell only
    if not header:
        return []
    width = max(len(r) for r in rows)
    names = column_names(header, width)
    data = [r for r in rows[first:] if _is_data_row(r)]
    entities = [" ".join(c for c in r if c and not _NUMERIC.match(c)) for r in data]
    items: list[QAItem] = []
    for row, entity in zip(data, entities, strict=True):
        if len(items) >= PER_TABLE or entities.count(entity) != 1 or not entity:
            continue
        for j, cell in enumerate(row[1:], start=1):
            if _NUMERIC.match(cell or "") and len(cell) >= 3 and names[j] and not _NUMERIC.match(names[j]):
                n = start + len(items)
                question = (f"What is the {names[j]} for {entity}?" if n % 2 == 0
                            else f"¿Cuál es el valor de {names[j]} para {entity}?")
                # the id names the fact (file, entity, column): the same fact twice is one question
                items.append(QAItem(f"{name}|{entity}|{names[j]}", question, (cell,), name,
                                    (int(table.get("page") or 1),), True, "table"))
                break
    return items


def build_items(folder: Path) -> list[QAItem]:
    items: list[QAItem] = []
    for expected in sorted(folder.glob("*.expected.json")):
        pdf = expected.name.replace(".expected.json", ".pdf")
        data = json.loads(expected.read_text(encoding="utf-8"))
        facts: dict[str, set[str]] = {}
        for table in data.get("tables", []):
            for item in table_items(pdf, table, len(items)):
                facts.setdefault(item.id, set()).add(item.answers[0])
                if item.id not in {i.id for i in items}:  # the same table under two extraction settings
                    items.append(item)
        # an entity and column with different values in two tables of one file is ambiguous: left out
        items = [i for i in items if len(facts.get(i.id, {""})) <= 1 or i.source != pdf]
    return [replace(item, id=f"t{n}") for n, item in enumerate(items)]


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the shared table PDFs with their *.expected.json")
    parser.add_argument("--answer-mode", default=None)
    parser.add_argument("--list", action="store_true", help="print the questions and stop")
    parser.add_argument("--out", help="report folder")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    items = build_items(folder)
    if args.list:
        for item in items:
            print(json.dumps({"id": item.id, "question": item.question, "answers": item.answers,
                              "source": item.source, "pages": item.pages}, ensure_ascii=False))
        return 0
    settings = Settings()
    mode = args.answer_mode or settings.answer_mode
    config = EvalConfig(chunker=settings.chunker, mode=settings.retrieval_mode, rerank=settings.rerank,
                        expansion=tuple(settings.query_expansion), answer_mode=mode)
    report = Evaluator(settings).qa(folder / "tables-qa", folder, items, [config])
    print(report.table())
    if args.out:
        write_report(report, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
