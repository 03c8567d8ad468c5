"""Development sets over real documents of many kinds, asked as their users ask, in one index.

    python -m eval.devsets eval/sets/laws_es.jsonl eval/sets/kinds_es.jsonl --half report
    python -m eval.devsets eval/sets/statutes_es.jsonl --docs ../shared/corpus/pdf_text --half all

Every set's documents share one index (the folders given with ``--docs``, default the shared Spanish text PDFs
and ``pdf_kinds_es``), so that laws, agreements, tenders and leaflets compete for every question. Each question
is answered by the default pipeline, as ``rag ask`` answers it. Rows carry the set's ``half`` (``tune`` to tune
on, ``report`` never tuned on), the question's ``kind`` and the document's ``doc_kind``; metrics are reported
overall, per kind and per document kind:

- ``answer_contains_gold``, ``citation_accuracy`` (a cited file and page is a gold one), ``false_abstention``
  over answerable questions; ``abstention_near_miss`` over the near misses;
- ``evidence_not_quoted``: the gold answer was in a source the answer was built from, yet not in the answer
  (the right passage, the wrong sentence);
- ``short_exact_match`` / ``short_token_f1``: the short answer against the gold (a missing one scores 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from eval.answers import contains_answer, exact_match, token_f1
from eval.qa import QAItem, load_qa
from rag.offline import ensure_offline
from rag.settings import Settings

DEFAULT_FOLDERS = ("corpus/pdf_text", "corpus/pdf_kinds_es")


def documents_folder(folders: list[Path], into: Path, wanted: set[str]) -> Path:
    """One folder holding every wanted file of ``folders`` (copied; a file already there is kept)."""
    into.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.is_file() and (not wanted or path.name in wanted) and not (into / path.name).exists():
                shutil.copy2(path, into / path.name)
    return into


def score(item: QAItem, answer) -> dict[str, Any]:
    """One question's row: what was answered and how it compares with the gold."""
    cited = [(c.source, c.page) for c in answer.citations]
    contexts = " ".join(s.get("context", "") for s in answer.trace.details.get("sources", []))
    row: dict[str, Any] = {
        "id": item.id, "question": item.question, "answerable": item.answerable, "kind": item.category,
        "doc_kind": item.doc_kind, "half": item.half, "abstained": answer.abstained, "answer": answer.text,
        "citations": cited, "abstain_reason": answer.trace.details.get("abstain_reason"),
        "short_answer": getattr(answer, "short_answer", None),
    }
    if item.answerable:
        found = bool(contains_answer(answer.text, item.answers)) if not answer.abstained else False
        row.update({
            "contains_answer": float(found),
            "citation_correct": float(any(s == item.source and (not item.pages or p in item.pages) for s, p in cited)),
            "evidence_not_quoted": float(not found and bool(contains_answer(contexts, item.answers))),
            "short_exact_match": exact_match(row["short_answer"] or "", item.answers),
            "short_token_f1": token_f1(row["short_answer"] or "", item.answers),
        })
    return row


def metrics(rows: list[dict[str, Any]]) -> dict[str, float | int]:
    """Means over the rows' answerable questions, and the near misses' abstention."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def mean(group: list[dict[str, Any]], key: str) -> float | None:
        values = [float(r[key]) for r in group if r.get(key) is not None]
        return round(sum(values) / len(values), 3) if values else None

    out = {"questions": len(rows), "answerable": len(answerable),
           "answer_contains_gold": mean(answerable, "contains_answer"),
           "citation_accuracy": mean(answerable, "citation_correct"),
           "false_abstention": mean(answerable, "abstained"),
           "evidence_not_quoted": mean(answerable, "evidence_not_quoted"),
           "short_exact_match": mean(answerable, "short_exact_match"),
           "short_token_f1": mean(answerable, "short_token_f1"),
           "abstention_near_miss": mean(unanswerable, "abstained")}
    return {k: v for k, v in out.items() if v is not None}


def grouped(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float | int]]:
    """Metrics per value of ``key`` (near misses are counted with the document kind they name, if any)."""
    values = sorted({r.get(key) or "-" for r in rows})
    return {v: metrics([r for r in rows if (r.get(key) or "-") == v]) for v in values}


def table(title: str, groups: dict[str, dict[str, float | int]]) -> str:
    columns = ["questions", "answer_contains_gold", "citation_accuracy", "false_abstention", "abstention_near_miss",
               "evidence_not_quoted", "short_token_f1"]
    lines = [f"### {title}", "", "| group | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, found in groups.items():
        lines.append(f"| {name} | " + " | ".join(str(found.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", help="QA-layout .jsonl files (with half, kind, doc_kind)")
    parser.add_argument("--docs", action="append", help="document folder (repeatable; default: the shared "
                                                        "Spanish text PDFs and pdf_kinds_es)")
    parser.add_argument("--half", choices=["tune", "report", "all"], default="report")
    parser.add_argument("--index", help="index folder (kept between runs; default <index_dir>/eval-cache/devsets)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", help="write metrics and per-question rows as JSON here")
    args = parser.parse_args(argv)
    settings = Settings()
    items = [item for path in args.sets for item in load_qa(Path(path))]
    items = [i for i in items if args.half == "all" or i.half in (args.half, "")][:args.limit]
    if args.docs:
        folders = [Path(d) for d in args.docs]
    elif not Path(settings.shared_dir).is_dir():
        raise SystemExit(f"{settings.shared_dir}: no shared folder (set RAG_SHARED_DIR or pass --docs)")
    else:
        folders = [Path(settings.shared_dir) / f for f in DEFAULT_FOLDERS]
    index = Path(args.index) if args.index else Path(settings.index_dir) / "eval-cache" / "devsets"
    settings = settings.with_overrides(index_dir=index / "index")
    wanted = {name for f in folders for name in (p.name for p in f.iterdir()) if name.startswith("es_")}

    from ingest.pipeline import FolderIngestor
    from rag.pipeline import QueryPipeline

    docs = documents_folder(folders, index / "docs", wanted)
    started = time.perf_counter()
    report = FolderIngestor(settings).run(docs, progress=False)
    print(f"index: {report.summary().splitlines()[0]} ({time.perf_counter() - started:.0f} s)")
    pipeline = QueryPipeline.from_settings(settings)
    pipeline.warm_up()
    rows, seconds = [], []
    for item in items:
        started = time.perf_counter()
        answer = pipeline.answer(item.question)
        seconds.append(time.perf_counter() - started)
        rows.append(score(item, answer))
    summary = {"sets": args.sets, "half": args.half, "overall": metrics(rows),
               "by_kind": grouped(rows, "kind"), "by_doc_kind": grouped(rows, "doc_kind"),
               "answer_p50_s": round(statistics.median(seconds), 3) if seconds else None}
    print(table(f"{', '.join(Path(s).stem for s in args.sets)}: {args.half} half", {"all": summary["overall"]}))
    print(table("by document kind", summary["by_doc_kind"]))
    print(table("by question kind", summary["by_kind"]))
    print(f"answer p50 {summary['answer_p50_s']} s")
    if args.out:
        Path(args.out).write_text(json.dumps({**summary, "rows": rows}, indent=2, ensure_ascii=False, default=str),
                                  encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
