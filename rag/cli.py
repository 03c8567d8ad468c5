"""The ``rag`` command: ingest, ask, serve, eval."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import get_args

from rag.offline import ensure_offline
from rag.settings import ChunkerName, Settings

CHUNKERS = list(get_args(ChunkerName))


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"index_dir": getattr(args, "index", None), "chunker": getattr(args, "chunker", None)}
    return Settings.load(args.config, **{k: v for k, v in overrides.items() if v is not None})


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.pipeline import FolderIngestor

    settings = _settings(args)
    ingestor = FolderIngestor(settings)
    report = ingestor.run(Path(args.path), dry_run=args.dry_run, progress=not args.quiet)
    if args.dry_run:
        print(f"plan: {len(report.ingested)} to ingest, {len(report.unchanged)} unchanged, "
              f"{len(report.removed)} to remove")
        for source in report.ingested:
            print(f"  ingest  {source}")
        for source in report.removed:
            print(f"  remove  {source}")
        return 0
    print(report.summary())
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.pipeline import QueryOptions, QueryPipeline

    settings = _settings(args)
    if not settings.chroma_url and not (Path(settings.index_dir) / "manifest.json").exists():
        print(f"error: no index at {settings.index_dir}: run 'rag ingest FOLDER --index {settings.index_dir}' first",
              file=sys.stderr)
        return 2
    pipeline = QueryPipeline.from_settings(settings)
    started = time.perf_counter()
    answer = pipeline.answer(args.question, QueryOptions(answer_mode=args.mode, top_k=args.top_k))
    answer.trace.timings_ms["total"] = (time.perf_counter() - started) * 1000
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.text)
    if answer.citations:
        print()
        for n, citation in enumerate(answer.citations, start=1):
            page = f", page {citation.page}" if citation.page is not None else ""
            print(f"[{n}] {citation.source}{page}")
    for note in answer.trace.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = _settings(args)
    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.runner import evaluate_beir

    settings = _settings(args)
    if Path(args.dataset).is_file():
        return _eval_qa(args, settings)
    report = evaluate_beir(Path(args.dataset), settings, split=args.split, ks=tuple(args.k),
                           index_dir=Path(args.index) if args.index else None, mode=args.mode)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _eval_qa(args: argparse.Namespace, settings: Settings) -> int:
    from eval.qa import evaluate_qa, load_qa
    from ingest.pipeline import FolderIngestor
    from rag.pipeline import QueryPipeline

    items = load_qa(Path(args.dataset))
    if args.docs:
        print(FolderIngestor(settings).run(Path(args.docs)).summary())
    report = evaluate_qa(items, QueryPipeline.from_settings(settings), answer_mode=args.answer_mode)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps({"metrics": report.metrics, "rows": report.rows},
                                              ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Local, private question answering over your documents.")
    parser.add_argument("--config", help="TOML settings file (also RAG_CONFIG_FILE)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and decisions")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest a folder or file into the index")
    p.add_argument("path")
    p.add_argument("--index", help="index folder (RAG_INDEX_DIR)")
    p.add_argument("--chunker", choices=CHUNKERS, help="chunking strategy (RAG_CHUNKER)")
    p.add_argument("--dry-run", action="store_true", help="print what would change and stop")
    p.add_argument("--quiet", action="store_true", help="no per-file progress")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question from the indexed documents")
    p.add_argument("question")
    p.add_argument("--index", help="index folder (RAG_INDEX_DIR)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--mode", choices=["generative", "extractive", "auto"], help="answer mode (RAG_ANSWER_MODE)")
    p.add_argument("--top-k", type=int, help="sources handed to the model (RAG_TOP_K)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="serve the HTTP API")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--index", help="index folder (RAG_INDEX_DIR)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("eval", help="evaluate retrieval (BEIR folder) or answers (QA .jsonl file)")
    p.add_argument("dataset", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) or QA .jsonl")
    p.add_argument("--docs", help="QA layout: ingest this folder into the index first")
    p.add_argument("--answer-mode", choices=["generative", "extractive", "auto"], help="QA layout: answer mode")
    p.add_argument("--index", help="index folder for the corpus (default: a cache under the index dir)")
    p.add_argument("--split", default=None, help="qrels split (default: the only or 'dev' or 'test')")
    p.add_argument("--k", type=int, nargs="+", default=[1, 5, 10], help="cut-offs")
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid", help="retrieval mode")
    p.add_argument("--chunker", choices=CHUNKERS, help="chunking strategy")
    p.add_argument("--json", help="write the metrics as JSON to this file")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
