"""The ``rag`` command: ingest, ask, serve, eval."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import get_args

from rag import collections
from rag.collections import DEFAULT_COLLECTION
from rag.keys import ALL_COLLECTIONS, SCOPES, KeyStore
from rag.offline import ensure_offline
from rag.settings import ChunkerName, Settings

CHUNKERS = list(get_args(ChunkerName))


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(args.config, **_cli_overrides(args))


def _in_collection(settings: Settings, name: str | None) -> Settings:
    """The settings of collection ``name`` of the index folder (``UnknownCollection`` when it does not exist)."""
    if name is None:
        return settings
    if not collections.exists(settings.index_dir, name):
        raise collections.UnknownCollection(name, collections.list_collections(settings.index_dir))
    return settings.for_collection(name)


def _say_waiting(owner) -> None:
    who = owner.describe() if owner else "another process"
    print(f"waiting for {who} to release the index...", file=sys.stderr)


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.ownership import IndexBusy, IndexOwnership

    settings = _settings(args)
    path = Path(args.path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if args.watch and (args.dry_run or not path.is_dir()):
        raise ValueError("--watch needs a folder, and no --dry-run")
    ownership = IndexOwnership(settings.index_dir)
    owner = ownership.owner()
    if owner is not None and owner.command == "serve":
        if args.dry_run:  # a server holds the index for as long as it runs: waiting for it would not end
            raise IndexBusy(Path(settings.index_dir), owner)
        return _ingest_by_server(owner, path, args)
    try:
        with ownership.hold("ingest", wait_s=args.wait, on_wait=_say_waiting):
            if args.collection and not args.dry_run:
                collections.create(settings.index_dir, args.collection)
            return _ingest_here(_in_collection(settings, args.collection), path, args)
    except IndexBusy as busy:
        if busy.owner is not None and busy.owner.command == "serve" and not args.dry_run:
            return _ingest_by_server(busy.owner, path, args)  # a server took the index while we waited
        raise


def _ingest_here(settings: Settings, path: Path, args: argparse.Namespace) -> int:
    from ingest.pipeline import FolderIngestor

    ingestor = FolderIngestor(settings)
    if args.watch:
        from ingest.watch import watch_folder

        print(f"watching {path} (Ctrl+C stops)", file=sys.stderr)
        watch_folder(path, lambda folder: print(ingestor.run(folder, progress=not args.quiet).summary(), flush=True))
        return 0
    report = ingestor.run(path, dry_run=args.dry_run, progress=not args.quiet)
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


def _ingest_by_server(owner, path: Path, args: argparse.Namespace) -> int:
    from rag import handover

    print(f"the index is served by {owner.describe()}: handing the ingestion over to it", file=sys.stderr)
    if args.watch:
        from ingest.watch import watch_folder

        print(f"watching {path} (Ctrl+C stops)", file=sys.stderr)
        watch_folder(path, lambda folder: print(handover.ingest(owner, folder, progress=not args.quiet,
                                                                collection=args.collection)["summary"], flush=True))
        return 0
    result = handover.ingest(owner, path, progress=not args.quiet, collection=args.collection)
    print(result["summary"])
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.ownership import IndexBusy, IndexOwnership

    settings = _settings(args)
    ownership = IndexOwnership(settings.index_dir)
    owner = ownership.owner()
    if owner is not None and owner.command == "serve":
        return _ask_server(owner, args)
    here = _in_collection(settings, args.collection)
    if settings.backend == "local" and not settings.chroma_url and not any((Path(here.index_dir) / name).exists()
                                           for name in ("manifest.json", "chunks.sqlite", "chroma")):
        where = f" --collection {args.collection}" if args.collection else ""
        print(f"error: no index at {here.index_dir}: run 'rag ingest FOLDER --index {settings.index_dir}{where}' "
              "first", file=sys.stderr)
        return 2
    try:
        with ownership.hold("ask", wait_s=args.wait, on_wait=_say_waiting):
            return _ask_here(here, args)
    except IndexBusy as busy:
        if busy.owner is not None and busy.owner.command == "serve":
            return _ask_server(busy.owner, args)
        raise


def _ask_here(settings: Settings, args: argparse.Namespace) -> int:
    from rag.pipeline import QueryOptions, QueryPipeline

    pipeline = QueryPipeline.from_settings(settings)
    started = time.perf_counter()
    answer = pipeline.answer(args.question, QueryOptions(answer_mode=args.mode, top_k=args.top_k))
    answer.trace.timings_ms["total"] = (time.perf_counter() - started) * 1000
    _print_answer(answer.to_dict(), args.json)
    damaged = list(pipeline.index.damaged)
    if not (Path(settings.index_dir) / "manifest.json").exists() and not settings.chroma_url:
        damaged.append("manifest.json is missing")
    for problem in damaged:
        print(f"warning: {problem}; answered from what the index still holds. Run 'rag index repair --index "
              f"{settings.index_dir}' to rebuild it", file=sys.stderr)
    return 0


def _ask_server(owner, args: argparse.Namespace) -> int:
    """The server owns the index: it answers, so that no second process opens the index."""
    from rag import handover

    body = {k: v for k, v in {"question": args.question, "answer_mode": args.mode, "top_k": args.top_k,
                              "collection": args.collection}.items() if v is not None}
    answer = handover.ask(owner, body)
    answer["trace"].setdefault("notes", []).append(f"answered by {owner.describe()}")
    _print_answer(answer, args.json)
    return 0


def _print_answer(answer: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    if answer.get("short_answer"):  # alone on the first line: a script reads it with `head -1`
        label = "Respuesta corta" if answer["trace"].get("language") == "es" else "Short answer"
        print(f"{label}: {answer['short_answer']}")
    print(answer["answer"])
    if answer["citations"]:
        print()
        for n, citation in enumerate(answer["citations"], start=1):
            page = f", page {citation['page']}" if citation["page"] is not None else ""
            print(f"[{n}] {citation['source']}{page}")
    for note in answer["trace"].get("notes", []):
        print(f"note: {note}", file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from rag.ownership import IndexOwnership

    settings = _settings(args)
    host = args.host or settings.host
    port = args.port or settings.port
    # The CLI hands jobs over through loopback; a server bound only to another address takes none.
    url = f"http://127.0.0.1:{port}" if host in ("127.0.0.1", "localhost", "0.0.0.0", "::", "") else None
    watch = Path(args.watch) if args.watch else None
    if watch is not None and not watch.is_dir():
        raise FileNotFoundError(f"no such folder to watch: {watch}")
    if (host not in ("127.0.0.1", "localhost", "::1") and not settings.secret("api_key")
            and not KeyStore(settings.index_dir).any() and not args.allow_open):
        print(f"error: no API key is set, so anyone who reaches {host}:{port} could read every document. Make one "
              "('rag keys add NAME --scope admin' or RAG_API_KEY), or start with --allow-open to serve without keys",
              file=sys.stderr)
        return 2
    ownership = IndexOwnership(settings.index_dir)
    with ownership.hold("serve", url=url) as owner:
        app = create_app(settings, handover_token=owner.token, watch=watch)
        # SIGTERM: requests still running after 5 s are cancelled (their work stops at its next step), so the
        # server ends within seconds instead of waiting for every answer (issue 45).
        uvicorn.run(app, host=host, port=port, log_level="info", root_path=settings.root_path,
                    timeout_graceful_shutdown=5)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Scoped API keys of the index folder: the new key is printed once, as the last line on stdout."""
    settings = _settings(args)
    store = KeyStore(settings.index_dir)
    if args.keys_command == "add":
        if args.collection != ALL_COLLECTIONS:
            collections.check_name(args.collection)
        key = store.add(args.name, args.scope, args.collection)
        print(f"key {args.name!r}: {args.scope} access to collection {args.collection!r}. It is shown only now; "
              "send it as 'Authorization: Bearer <key>':")
        print(key)
    elif args.keys_command == "list":
        for stored in store.list():
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(stored.created))
            print(f"{stored.name}\t{stored.scope}\t{stored.collection}\t{created}")
    elif not store.revoke(args.name):
        print(f"error: no key named {args.name!r}", file=sys.stderr)
        return 2
    else:
        print(f"revoked {args.name!r}")
    return 0


def _embedder_id(settings: Settings) -> str:
    from rag.embedder import dense_model_id

    return dense_model_id(settings.dense_model, settings.embedder_model)  # the index vectors' model; loads nothing


def _embed_headings(settings: Settings):
    """The dense embedder's ``embed``, loaded on first use and kept (window units' headings, ``rag.index``)."""
    loaded = []

    def embed(texts: list[str]):
        if not loaded:
            from rag.embedder import SentenceTransformerEmbedder, dense_embedder

            judge = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size,
                                                runtime=settings.embedder_runtime)
            loaded.append(dense_embedder(settings.dense_model, judge, settings.embed_batch_size,
                                         settings.embed_runtime))
        return loaded[0].embed(texts)
    return embed


def cmd_index(args: argparse.Namespace) -> int:
    from rag.ownership import IndexOwnership
    from rag.snapshot import export_snapshot, fingerprint, import_snapshot

    settings = _settings(args)
    ownership = IndexOwnership(settings.index_dir)
    if args.index_command == "migrate":
        return _migrate(settings, args, ownership)
    if args.index_command in ("check", "repair"):
        return _check_or_repair(settings, args, ownership)
    if settings.backend != "local":
        raise ValueError(f"'rag index {args.index_command}' works on a local index (RAG_BACKEND=local); on "
                         f"{settings.backend} it is not built yet (issue 36)")
    target = Path(args.file).resolve()
    if args.index_command == "import":
        with ownership.hold("import", wait_s=args.wait, on_wait=_say_waiting):
            info = import_snapshot(target, Path(settings.index_dir), fingerprint(settings, _embedder_id(settings)),
                                   settings.collection, settings.chroma_url,
                                   (settings.window_heading_weight, settings.window_heading_terms),
                                   _embed_headings(settings))
        print(f"imported {info.summary()} into {settings.index_dir}")
        for note in info.notes:
            print(f"note: settings differ from the snapshot's, which stays as it was made: {note}", file=sys.stderr)
        return 0
    if not (Path(settings.index_dir) / "manifest.json").exists():
        raise FileNotFoundError(f"no index at {settings.index_dir} to export")
    owner = ownership.owner()
    if owner is not None and owner.command == "serve":
        from rag import handover

        print(f"the index is served by {owner.describe()}: it writes the snapshot", file=sys.stderr)
        print(f"exported {handover.export(owner, target)['summary']} to {target}")
        return 0
    from rag.index import DocumentIndex

    with ownership.hold("export", wait_s=args.wait, on_wait=_say_waiting):
        info = export_snapshot(DocumentIndex.from_settings(settings), Path(settings.index_dir),
                               fingerprint(settings, _embedder_id(settings)), target)
    print(f"exported {info.summary()} to {target}")
    return 0


def _migrate(settings: Settings, args: argparse.Namespace, ownership) -> int:
    """``rag index migrate --to milvus --uri URI``: the local index (``--index``, one collection) copied into
    Milvus without embedding anything again; its manifest to ``--target-index`` (default: the same folder)."""
    from ingest.migrate import migrate_to_milvus
    from rag.index import DocumentIndex
    from rag.milvus import MilvusBackend
    from rag.ownership import IndexOwnership

    source = _in_collection(settings.with_overrides(backend="local"), args.collection)
    target_root = Path(args.target_index) if args.target_index else Path(settings.index_dir)
    target = Settings.load(args.config, **{**_cli_overrides(args), "index_dir": target_root}).for_collection(
        args.collection).with_overrides(backend=args.to, milvus_uri=args.uri)
    same = target_root.resolve() == Path(settings.index_dir).resolve()
    with ownership.hold("migrate", wait_s=args.wait, on_wait=_say_waiting):
        with (IndexOwnership(target_root).hold("migrate", wait_s=args.wait, on_wait=_say_waiting) if not same
              else contextlib.nullcontext()):
            if args.collection and not same:
                collections.create(target_root, args.collection)
            milvus = MilvusBackend.from_settings(target)
            try:
                report = migrate_to_milvus(DocumentIndex.from_settings(source), milvus, Path(target.index_dir))
            finally:
                milvus.close()
    print(report.summary())
    where = f" --index {target_root}" + (f" --collection {args.collection}" if args.collection else "")
    print(f"serve it with RAG_BACKEND=milvus RAG_MILVUS_URI={report.uri}: e.g. 'rag ask QUESTION{where}'",
          file=sys.stderr)
    return 0


def _check_or_repair(settings: Settings, args: argparse.Namespace, ownership) -> int:
    """``rag index check``: exit 1 on any disagreement; ``rag index repair``: fix them, then check again."""
    from ingest.check import check_index

    here = _in_collection(settings, args.collection)
    if args.index_command == "check" and settings.backend != "local":
        raise ValueError(f"'rag index check' reads a local index's files (RAG_BACKEND=local); on {settings.backend}, "
                         "'rag index repair' brings the manifest and the store in step")
    if args.index_command == "repair":
        from ingest.pipeline import FolderIngestor

        with ownership.hold("repair", wait_s=args.wait, on_wait=_say_waiting):
            report = FolderIngestor(here).repair()
        print("\n".join(report.lines()) or "nothing to repair")
    if settings.backend != "local":  # the check reads the local engine's files
        return 0
    result = check_index(here)
    print(result.summary())
    return 0 if result.ok else 1


def cmd_eval(args: argparse.Namespace) -> int:
    if args.compare:
        return _eval_compare(args)
    if not args.dataset:
        raise ValueError("rag eval needs a dataset (BEIR folder, QA .jsonl or RGB .jsonl) or --compare A B")
    from eval.configs import DEFAULT_GRID, NAMED, grid, named

    settings = _settings(args)
    if args.eval_config and args.eval_config not in NAMED:
        settings = Settings.load(args.eval_config, **_cli_overrides(args))
    overrides = {"retrieval_mode": args.mode, "answer_mode": args.answer_mode, "rerank": args.rerank,
                 "query_expansion": None if args.expansion is None else
                 ([] if args.expansion == "none" else args.expansion.split("+"))}
    settings = settings.with_overrides(**overrides)
    if args.collection:  # evaluation indexes cached in that collection's folder, its settings otherwise
        collections.create(settings.index_dir, args.collection)
        settings = settings.for_collection(args.collection)
    if args.grid is not None:
        configs = grid(args.grid or DEFAULT_GRID, settings)
    elif args.eval_config in NAMED:
        configs = [named(args.eval_config, settings)]
    else:
        configs = grid("", settings)

    dataset = Path(args.dataset)
    started = time.perf_counter()
    out = Path(args.out) if args.out else Path("eval-reports") / f"{dataset.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if dataset.is_file() and _jsonl_keys(dataset) >= {"query", "fakeanswer"}:
        return _eval_rgb(args, settings, dataset, out)
    from eval.report import write_report
    from eval.runner import Evaluator

    evaluator = Evaluator(settings, ks=tuple(args.k), limit=args.limit, judge=_judge(args, settings))
    if dataset.is_file():
        from eval.qa import load_qa

        items = load_qa(dataset)[: args.limit] if args.limit else load_qa(dataset)
        report = evaluator.qa(dataset, Path(args.docs) if args.docs else dataset.parent, items, configs)
    else:
        report = evaluator.beir(dataset, configs, split=args.split, answers=args.answers)
    report.timings_s["total"] = time.perf_counter() - started
    print(report.table())
    written = write_report(report, out)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _cli_overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides = {"index_dir": getattr(args, "index", None), "chunker": getattr(args, "chunker", None),
                 "root_path": getattr(args, "root_path", None)}
    return {k: v for k, v in overrides.items() if v is not None}


def _jsonl_keys(path: Path) -> set[str]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    return set(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: first line is not JSON ({exc.msg})") from exc
    raise ValueError(f"{path}: empty file")


def _judge(args: argparse.Namespace, settings: Settings):
    if args.judge != "llm":
        return None
    from eval.faithfulness import LLMJudge
    from rag.generator import generator_from_settings

    return LLMJudge(generator_from_settings(settings))


def _eval_rgb(args: argparse.Namespace, settings: Settings, dataset: Path, out: Path) -> int:
    from eval.faithfulness import AlignmentJudge
    from eval.rgb import load_rgb, validate_judge
    from rag.embedder import SentenceTransformerEmbedder

    items = load_rgb(dataset)[: args.limit] if args.limit else load_rgb(dataset)
    judge = _judge(args, settings) or AlignmentJudge(SentenceTransformerEmbedder(settings.embedder_model))
    validation = validate_judge(items, judge)
    summary = {"dataset": dataset.name, "judge": judge.name, **validation.to_dict()}
    print(f"faithfulness judge '{judge.name}' on {dataset.name}: ROC AUC {validation.auc:.4f}, "
          f"held-out accuracy {validation.accuracy:.4f} at threshold {validation.threshold:.4f} "
          f"({validation.items} items)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({**summary, "scores": validation.scores}, indent=2), encoding="utf-8")
    print(f"wrote {out / 'report.json'}")
    return 0


def _eval_compare(args: argparse.Namespace) -> int:
    from eval.compare import compare, format_differences

    before, after = (Path(p) for p in args.compare)
    diffs = compare(before, after, args.threshold)
    print(format_differences(diffs, args.threshold))
    return 1 if any(d.regression for d in diffs) else 0


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
    p.add_argument("--wait", type=float, default=3600.0, metavar="SECONDS",
                   help="when another 'rag' command holds the index, wait this long for it (default 3600)")
    p.add_argument("--watch", action="store_true",
                   help="after ingesting, keep watching the folder and sync every change (Ctrl+C stops)")
    p.add_argument("--collection", help="a named collection of the index folder (default: the default one)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question from the indexed documents")
    p.add_argument("question")
    p.add_argument("--index", help="index folder (RAG_INDEX_DIR)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--mode", choices=["generative", "extractive", "auto"], help="answer mode (RAG_ANSWER_MODE)")
    p.add_argument("--top-k", type=int, help="sources handed to the model (RAG_TOP_K)")
    p.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                   help="when 'rag ingest' holds the index, wait this long for it (default 600)")
    p.add_argument("--collection", help="a named collection of the index folder (default: the default one)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="serve the HTTP API")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--index", help="index folder (RAG_INDEX_DIR)")
    p.add_argument("--watch", metavar="DIR", help="keep the index in sync with this folder while serving")
    p.add_argument("--root-path", help="the sub-path a reverse proxy serves the API under, e.g. /rag")
    p.add_argument("--allow-open", action="store_true",
                   help="serve on a non-loopback address without any API key (anyone who reaches it reads all)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("keys", help="scoped API keys: add NAME --collection C --scope read|write|admin, list, revoke")
    keys_sub = p.add_subparsers(dest="keys_command", required=True)
    q = keys_sub.add_parser("add", help="make a key; it is printed once, as the last line")
    q.add_argument("name")
    q.add_argument("--collection", default=DEFAULT_COLLECTION, help="the collection it reaches, or '*' for all")
    q.add_argument("--scope", choices=SCOPES, default="read",
                   help="read: questions and lists; write: also ingest and delete; admin: also collections, keys")
    q = keys_sub.add_parser("list", help="names, scopes and collections (never the keys)")
    q = keys_sub.add_parser("revoke", help="remove a key")
    q.add_argument("name")
    for q in keys_sub.choices.values():
        q.add_argument("--index", help="index folder (RAG_INDEX_DIR)")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("index", help="back up or restore an index (export FILE, import FILE --index DIR), "
                                     "check it, repair it")
    index_sub = p.add_subparsers(dest="index_command", required=True)
    for name, text in (("check", "report what each store of the index holds and every disagreement between "
                                 "them (exit 1 on one); writes nothing"),
                       ("repair", "fix what 'check' finds without deleting a chunk of a document no one removed: "
                                  "undo an interrupted run, rebuild manifest entries and derived files, embed "
                                  "missing vectors again"),
                       ("export", "write a consistent snapshot of the index (also while 'rag serve' runs)"),
                       ("import", "restore a snapshot into a new index folder (the same embedder is required)"),
                       ("migrate", "copy a local index (chunks, their vectors, the manifest) into Milvus without "
                                   "embedding again; resumable, a second run adds nothing twice")):
        q = index_sub.add_parser(name, help=text)
        if name in ("export", "import"):
            q.add_argument("file", help="the snapshot file (.tar.gz)")
        else:
            q.add_argument("--collection", help="a collection of the index folder (default: the default one)")
        if name == "migrate":
            q.add_argument("--to", choices=["milvus"], required=True, help="the engine to copy the index into")
            q.add_argument("--uri", required=True,
                           help="Milvus: a path ending in .db (Milvus Lite) or http://host:19530 (RAG_MILVUS_TOKEN "
                                "for credentials)")
            q.add_argument("--target-index", metavar="DIR",
                           help="the folder that will serve the Milvus index (its manifest, keys, uploads); "
                                "default: the local index's own folder")
        q.add_argument("--index", help="index folder (RAG_INDEX_DIR)")
        q.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                       help="when another 'rag' command holds the index, wait this long for it (default 600)")
        q.set_defaults(func=cmd_index)

    p = sub.add_parser("eval", help="evaluate retrieval (BEIR folder), answers (QA .jsonl) or the faithfulness "
                                    "judge (RGB .jsonl); writes report.json, report.md, run.trec and plots")
    p.add_argument("dataset", nargs="?", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), "
                                              "QA .jsonl (question, answers, source, pages, answerable) or RGB .jsonl")
    p.add_argument("--docs", help="QA layout: the document folder (default: the .jsonl file's folder)")
    p.add_argument("--split", default=None, help="qrels split (default: the only one, else dev, else test)")
    p.add_argument("--k", type=int, nargs="+", default=[1, 3, 5, 10, 100], help="cut-offs (default 1 3 5 10 100)")
    p.add_argument("--config", dest="eval_config",
                   help="a settings TOML file, or a named configuration: bm25, dense, hybrid, hybrid+rerank")
    p.add_argument("--grid", nargs="?", const="",
                   help="run a grid of configurations, e.g. 'chunker=sentence-window,semantic;mode=bm25,dense,hybrid;"
                        "rerank=off,on;expansion=none,decompose;answer=extractive,auto' (alone: mode x rerank)")
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], help="retrieval mode")
    p.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=None, help="re-rank candidates")
    p.add_argument("--expansion", help="query expansion: none, decompose, multi-query, hyde, or joined with +")
    p.add_argument("--chunker", choices=CHUNKERS, help="chunking strategy")
    p.add_argument("--answer-mode", choices=["generative", "extractive", "auto"], help="answer mode")
    p.add_argument("--answers", action="store_true",
                   help="BEIR layout: also answer every query and score answers (needs answers.jsonl, e.g. XQuAD)")
    p.add_argument("--judge", choices=["alignment", "llm"], default="alignment",
                   help="faithfulness judge: embedder+lexical alignment (default) or the configured LLM")
    p.add_argument("--limit", type=int, help="only the first N queries (sorted by id)")
    p.add_argument("--index", help="index folder; evaluation indexes are cached in its eval-cache/")
    p.add_argument("--out", help="report folder (default: eval-reports/<dataset>-<time>)")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two report.json files")
    p.add_argument("--threshold", type=float, default=0.01,
                   help="--compare: a drop beyond this is a regression (exit status 1)")
    p.add_argument("--collection", help="a named collection of the index folder (default: the default one)")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, LookupError) as exc:  # SnapshotError is a ValueError; no collection
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or a read-only index folder: said plainly, no traceback
        print(f"error: {exc.strerror if exc.strerror and exc.filename is None else exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        from rag.backend import BackendUnavailable
        from rag.handover import HandoverError
        from rag.ownership import IndexBusy

        if isinstance(exc, BackendUnavailable):  # the index's engine cannot be reached: it names the URI
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not isinstance(exc, (IndexBusy, HandoverError)):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
