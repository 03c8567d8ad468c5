"""One retrieval table per set: plain baselines over whole documents against the product, in the same run.

    python -m eval.retrieval_table ../shared/eval/scifact [--half report|tune|all] [--systems LIST] [--out F]
    python -m eval.retrieval_table eval/sets/statutes_es.jsonl --docs ../shared/corpus/pdf_text

Rows (``--systems``, comma-separated, default all): ``bm25``, ``dense-minilm``, ``dense-e5`` (whole documents),
``rrf-minilm``, ``rrf-e5`` (plain RRF of BM25 and that dense ranking, whole documents), ``scores-minilm``,
``scores-e5`` (the two lists' min-max normalised scores summed, whole documents), ``previous`` (the product
before issue 18: sentence units only, all-MiniLM-L6-v2 as the dense side, English-only dense) and ``default``
(the product with the current settings). The product rows index the corpus in ``--work`` (a new temporary
folder unless given; an index already there is reused and its index time shows 0) and rank documents as the
product does (``RAG_DOCUMENT_RANKING``; the previous default by its best fused chunk). Columns: NDCG@10,
MRR@10, recall@100, p50 retrieval latency per query, index time. Queries (sorted by id) alternate between a
``tune`` half (even positions) and a ``report`` half (odd positions): settings are chosen on ``tune`` and reported
on ``report``.

A QA file (``--docs`` folder of PDFs) is turned into a page-level set: every page of every PDF (as the product
parses it, tables included) is a document, each answerable question's gold pages are its relevant ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from eval.baselines import BaselineRun, WholeDocumentBaselines
from eval.beir import BeirDataset, load_beir
from eval.configs import EvalConfig
from eval.metrics import evaluate_run
from eval.qa import load_qa
from eval.runner import Evaluator
from rag.embedder import E5Embedder, SentenceTransformerEmbedder, dense_embedder
from rag.offline import ensure_offline
from rag.settings import Settings

SYSTEMS = ("bm25", "dense-minilm", "dense-e5", "rrf-minilm", "rrf-e5", "scores-minilm", "scores-e5", "previous",
           "default")
# The product as it was before issue 18 (sentence units, MiniLM dense for English queries only, documents
# ranked by their best chunk in the fused order).
PREVIOUS = {"dense_model": "embedder", "dense_languages": ["en"], "window_weight": 0.0, "rrf_k": 60,
            "reranker_fallback": "embedder", "dense_search": "hnsw", "document_ranking": "chunks"}


def halves(qids: list[str]) -> dict[str, list[str]]:
    ordered = sorted(qids)
    return {"tune": ordered[0::2], "report": ordered[1::2], "all": ordered}


def qa_pages_as_beir(path: Path, docs: Path, out: Path) -> Path:
    """Writes a BEIR folder whose documents are the PDFs' pages and whose queries are the answerable questions."""
    from ingest.pdf import PdfParser

    items = [i for i in load_qa(path) if i.answerable and i.source]
    parser = PdfParser()
    corpus, pages_of = [], {}
    for pdf in sorted(docs.glob("*.pdf")):
        try:
            elements = parser.parse(pdf, pdf.name)
        except Exception as exc:  # noqa: BLE001 - a broken PDF is left out of the corpus, named
            logging.getLogger(__name__).warning("%s: left out (%s)", pdf.name, exc)
            continue
        by_page: dict[int, list[str]] = {}
        for element in elements:
            by_page.setdefault(element.page or 1, []).append(element.text)
        pages_of[pdf.name] = sorted(by_page)
        corpus.extend({"_id": f"{pdf.name}#p{page}", "title": "", "text": "\n".join(texts)}
                      for page, texts in sorted(by_page.items()))
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    (out / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus),
                                      encoding="utf-8")
    (out / "queries.jsonl").write_text("".join(json.dumps({"_id": i.id, "text": i.question}, ensure_ascii=False)
                                               + "\n" for i in items), encoding="utf-8")
    rows = ["query-id\tcorpus-id\tscore"]
    for item in items:
        for page in item.pages or pages_of.get(item.source, []):
            rows.append(f"{item.id}\t{item.source}#p{page}\t1")
    (out / "qrels" / "dev.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def _row(name: str, run: dict[str, list[str]], dataset: BeirDataset, qids: list[str],
         latencies: dict[str, float], index_s: float) -> dict[str, object]:
    metrics = evaluate_run({q: run.get(q, []) for q in qids}, {q: dataset.qrels[q] for q in qids}, (10, 100))
    chosen = [latencies[q] for q in qids if q in latencies]
    return {"system": name, "ndcg@10": metrics["ndcg@10"], "mrr@10": metrics["mrr@10"],
            "recall@100": metrics["recall@100"], "p50_ms": statistics.median(chosen) if chosen else None,
            "index_s": index_s}


def _product(folder: Path, settings: Settings) -> tuple[dict[str, list[str]], dict[str, float], float, str]:
    """The product over the set, indexed from scratch: rankings, per-query latency, index seconds, config name."""
    evaluator = Evaluator(settings)
    config = EvalConfig.from_settings(settings)
    report = evaluator.beir(folder, [config])
    result = report.results[0]
    index_s = sum(v for k, v in report.timings_s.items() if k.startswith("index "))
    latencies = result.query_ms
    return {q: [d for d, _ in r] for q, r in result.run.items()}, latencies, index_s, config.name


def table(rows: list[dict[str, object]], title: str) -> str:
    lines = [f"**{title}**", "", "| system | NDCG@10 | MRR@10 | recall@100 | p50 ms | index s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        p50 = "" if r["p50_ms"] is None else f"{r['p50_ms']:.1f}"
        lines.append(f"| {r['system']} | {r['ndcg@10']:.3f} | {r['mrr@10']:.3f} | {r['recall@100']:.3f} | {p50} "
                     f"| {r['index_s']:.0f} |")
    return "\n".join(lines)


def run(folder: Path, systems: list[str], settings: Settings, work: Path) -> dict[str, object]:
    dataset = load_beir(folder)
    qids = sorted(dataset.qrels)
    baselines = WholeDocumentBaselines(dataset, work / "baselines")
    runs: dict[str, tuple[dict[str, list[str]], dict[str, float], float]] = {}  # name -> rankings, ms, index s

    def keep(result: BaselineRun) -> None:
        runs[result.name] = (result.run, dict(zip(qids, result.latencies_ms, strict=True)), result.index_s)

    fused = {f"{kind}-{label}" for kind in ("rrf", "scores") for label in ("minilm", "e5")}
    bm25 = baselines.bm25(qids) if ({"bm25"} | fused) & set(systems) else None
    if "bm25" in systems:
        keep(bm25)
    for label, make in (("minilm", lambda: SentenceTransformerEmbedder(settings.embedder_model,
                                                                       batch_size=settings.embed_batch_size)),
                        ("e5", lambda: dense_embedder(E5Embedder.NAME, None, settings.embed_batch_size))):
        if {f"dense-{label}", f"rrf-{label}", f"scores-{label}"} & set(systems):
            model = "all-MiniLM-L6-v2" if label == "minilm" else "multilingual-e5-small"
            dense = baselines.dense(qids, make(), model)
            if f"dense-{label}" in systems:
                keep(dense)
            if f"rrf-{label}" in systems:
                keep(baselines.rrf(bm25, dense, model))
            if f"scores-{label}" in systems:
                keep(baselines.score_fusion(bm25, dense, model))
    for system in ("previous", "default"):
        if system in systems:
            overrides = dict(PREVIOUS) if system == "previous" else {}
            product = settings.with_overrides(index_dir=work / f"product-{system}", **overrides)
            found, latencies, index_s, name = _product(folder, product)
            label = f"{'previous default' if system == 'previous' else 'new default'} ({name}, {product.dense_model})"
            runs[label] = (found, latencies, index_s)
    out: dict[str, object] = {"dataset": dataset.name, "queries": len(qids), "halves": {}, "counts": {}}
    for half, chosen in halves(qids).items():
        out["halves"][half] = [_row(name, r, dataset, chosen, lat, idx) for name, (r, lat, idx) in runs.items()]
        out["counts"][half] = len(chosen)
    return out


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="BEIR-layout folder, or a QA file with --docs")
    parser.add_argument("--docs", help="PDF folder of a QA file (pages become the documents)")
    parser.add_argument("--half", choices=("tune", "report", "all"), default="report")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}")
    parser.add_argument("--work", help="folder for the indexes (default: a new temporary folder)")
    parser.add_argument("--out", help="write every half's rows as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rag-table-"))
    folder = Path(args.dataset)
    if args.docs:
        folder = qa_pages_as_beir(folder, Path(args.docs), work / f"{folder.stem}-pages")
    started = time.perf_counter()
    result = run(folder, systems, Settings(), work)
    rows = result["halves"][args.half]
    print(table(rows, f"{result['dataset']}, {args.half} half ({result['counts'][args.half]} queries)"))
    print(f"\n(run took {time.perf_counter() - started:.0f} s; indexes in {work})")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
