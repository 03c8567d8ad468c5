"""What the PDF parser takes out as running blocks, stamps and contents pages; that no answer goes with it.

For each PDF: its pages, the lines removed by each rule of ``ingest.boilerplate``, and a sample of them. Then,
for every answerable question of the eval sets (``eval/sets/*.jsonl`` and ``/tmp/sets/kinds_*.jsonl``, those
that exist) whose source is among the PDFs: whether one of its answers still occurs in the parsed text of its
pages. An answer found only once the removed lines are put back is a loss ("REMOVED", listed, exit status 1);
one found in neither was never in the text layer as written (hyphenation, a table cell) and is only counted.
Running lines that open the first page stay there as its title, and are listed as "title kept".

Usage: python -m bench.boilerplate [FOLDER ...] [--samples 4]
(default folders: <shared>/corpus/pdf_text and <shared>/corpus/pdf_kinds_es, shared from RAG_SHARED_DIR)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.boilerplate import BoilerplateReport, Rule
from ingest.pdf import PdfParser
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SET_GLOBS = [(ROOT / "eval" / "sets", "*.jsonl"), (Path("/tmp/sets"), "kinds_*.jsonl")]


@dataclass
class Parsed:
    pages: dict[int, str]  # page number -> the parsed text of its elements
    report: BoilerplateReport
    seconds: float


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def shared_dir() -> Path:
    path = Settings().shared_dir
    return path if path.is_absolute() else (ROOT / path).resolve()


def parse(path: Path, parser: PdfParser) -> Parsed:
    started = time.perf_counter()
    elements = parser.parse(path, path.name)
    pages: dict[int, str] = {}
    for element in elements:
        if element.page is not None:
            pages[element.page] = pages.get(element.page, "") + "\n" + element.text
    return Parsed(pages, parser.boilerplate, time.perf_counter() - started)


def questions() -> list[tuple[str, dict]]:
    """(set file name, question) for every answerable question of the eval sets found."""
    found = []
    for folder, pattern in SET_GLOBS:
        for path in sorted(folder.glob(pattern)):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    item = json.loads(line)
                    if item.get("answerable", True) and item.get("answers") and item.get("source"):
                        found.append((path.name, item))
    return found


def check_answer(item: dict, parsed: Parsed) -> str:
    """"kept", "removed" (found only with the removed lines back) or "absent" (in neither)."""
    pages = item.get("pages") or sorted(parsed.pages)
    kept = _norm(" ".join(parsed.pages.get(p, "") for p in pages))
    removed = _norm(" ".join(r.text for r in parsed.report.removed if r.page in pages))
    answers = [_norm(a) for a in item["answers"] if a.strip()]
    if any(a in kept for a in answers):
        return "kept"
    if any(a in removed or a in kept + " " + removed for a in answers):
        return "removed"
    return "absent"


def main() -> int:
    parser = argparse.ArgumentParser(description="running blocks, stamps and contents lines removed per PDF")
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--samples", type=int, default=4, help="removed lines shown per file and rule")
    args = parser.parse_args()
    shared = shared_dir()
    folders = args.folders or [shared / "corpus" / "pdf_text", shared / "corpus" / "pdf_kinds_es"]
    files = sorted(p for folder in folders for p in folder.glob("*.pdf"))
    if not files:
        print(f"no PDFs in {', '.join(map(str, folders))} (set RAG_SHARED_DIR or name folders)",
              file=sys.stderr)
        return 2

    pdf = PdfParser()
    parsed: dict[str, Parsed] = {}
    rules = [str(r) for r in Rule]
    print(f"{'file':<62} {'pages':>5} " + " ".join(f"{r[:8]:>8}" for r in rules) + f" {'sec':>6}")
    totals = dict.fromkeys(rules, 0)
    for path in files:
        try:
            parsed[path.name] = result = parse(path, pdf)
        except Exception as exc:  # noqa: BLE001 - one unreadable file is reported, the rest measured
            print(f"{path.name[:62]:<62} failed: {type(exc).__name__}: {exc}")
            continue
        counts = result.report.counts()
        for rule in rules:
            totals[rule] += counts.get(rule, 0)
        print(f"{path.name[:62]:<62} {result.report.pages:>5} "
              + " ".join(f"{counts.get(r, 0):>8}" for r in rules) + f" {result.seconds:>6.1f}")
    print(f"{'total':<62} {sum(p.report.pages for p in parsed.values()):>5} "
          + " ".join(f"{totals[r]:>8}" for r in rules))

    print("\nsample of removed lines (distinct, per rule):")
    for name, result in parsed.items():
        if not result.report.removed and not result.report.titles:
            continue
        print(f"  {name}")
        for text in result.report.titles[:args.samples]:
            print(f"    {'title kept':<11} p1    {text[:100]}")
        for rule in rules:
            seen: dict[str, int] = {}
            for removed in result.report.removed:
                if removed.rule == rule and len(seen) < args.samples:
                    seen.setdefault(removed.text[:100], removed.page)
            for text, page in seen.items():
                print(f"    {rule:<11} p{page:<4} {text}")

    print("\nanswers of the eval sets, in the parsed text of their pages:")
    lost = []
    by_set: dict[str, dict[str, int]] = {}
    for set_name, item in questions():
        result = parsed.get(item["source"])
        if result is None:
            continue
        verdict = check_answer(item, result)
        by_set.setdefault(set_name, {"kept": 0, "removed": 0, "absent": 0})[verdict] += 1
        if verdict == "removed":
            lost.append((set_name, item))
    if not by_set:
        print("  no eval set has questions on these files")
    for set_name, counts in by_set.items():
        print(f"  {set_name:<24} " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    for set_name, item in lost:
        where = f"{item['source']} p{item.get('pages')}"
        print(f"  REMOVED {set_name} {item.get('id')}: {item['answers']} ({where})")
    print("  no answer was removed" if not lost else f"  {len(lost)} answers removed")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
