"""Calibrate the abstention gates (``min_relevance``, ``min_evidence``) on a development set.

    python -m eval.calibrate ../shared/eval/xquad_es [--limit N] [--out calibration.json]
    python -m eval.calibrate ../shared/eval/xquad_es --near-miss   # tune on near misses, report on the other half

Answerable and unanswerable questions come from the same set: the corpus is split by group (XQuAD
article: the id before its last "_"; else the document itself), every other group is indexed, and a
question is unanswerable when none of its relevant documents is in the index. Every question is
answered with both gates open; the best source relevance and best evidence score of each are
recorded, and the pair of thresholds with the best balanced accuracy (mean of "answered when
answerable" and "abstained when not") is reported with its ROC AUCs and error rates.

``--near-miss`` uses ``eval.nearmiss`` instead: questions whose answer paragraph is left out of an
indexed article (near misses) and whose whole article is left out (far-off). Thresholds are chosen
on the ``tune`` half (best mean of answered-when-answerable, abstained-on-near-miss and
abstained-on-far-off, keeping false abstention at or below ``--max-false-abstention`` when any pair
can) and the rates are reported on the ``report`` half, which the choice never saw.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from eval.beir import BeirDataset, load_beir
from eval.runner import build_index
from rag.embedder import SentenceTransformerEmbedder
from rag.generator import generator_from_settings
from rag.offline import ensure_offline
from rag.pipeline import QueryOptions, QueryPipeline
from rag.settings import Settings


def _group(doc_id: str) -> str:
    return doc_id.rsplit("_", 1)[0] if "_" in doc_id else doc_id


def split_corpus(dataset: BeirDataset) -> tuple[BeirDataset, dict[str, bool]]:
    """Every other group indexed; query id -> answerable from the indexed half."""
    groups = sorted({_group(d.id) for d in dataset.corpus})
    kept = set(groups[::2])
    corpus = [d for d in dataset.corpus if _group(d.id) in kept]
    ids = {d.id for d in corpus}
    answerable = {q: any(d in ids for d, g in rel.items() if g > 0) for q, rel in dataset.qrels.items()}
    return replace(dataset, name=f"{dataset.name}-half", corpus=corpus), answerable


def best_pair(relevance: np.ndarray, evidence: np.ndarray, labels: np.ndarray,
              groups: np.ndarray | None = None, max_false_abstention: float = 1.0) -> dict[str, float]:
    """Thresholds (relevance, evidence) with the best balanced accuracy; ``labels``: 1 = answerable.

    ``groups`` splits the unanswerable questions into kinds (near-miss, far-off) that weigh the same;
    pairs whose false abstention exceeds ``max_false_abstention`` lose to any pair that keeps it.
    """
    best = {"balanced_accuracy": -1.0, "within_limit": False}
    kinds = sorted(set(groups[labels == 0])) if groups is not None else []
    for r in np.unique(np.round(relevance, 2)):
        for e in np.unique(np.round(evidence, 2)):
            answered = (relevance >= r) & (evidence >= e)
            hit = answered[labels == 1].mean() if (labels == 1).any() else 0.0
            if kinds:
                abstain = float(np.mean([(~answered[groups == k]).mean() for k in kinds]))
            else:
                abstain = (~answered[labels == 0]).mean() if (labels == 0).any() else 0.0
            score = (hit + abstain) / 2
            within = bool(1 - hit <= max_false_abstention)
            if (within, score) > (best["within_limit"], best["balanced_accuracy"]):
                best = {"balanced_accuracy": float(score), "within_limit": within, "min_relevance": float(r),
                        "min_evidence": float(e), "false_abstention": float(1 - hit),
                        "abstention_unanswerable": float(abstain)}
    return best


def rates(relevance: np.ndarray, evidence: np.ndarray, labels: np.ndarray, r: float, e: float,
          groups: np.ndarray | None = None) -> dict[str, float]:
    answered = (relevance >= r) & (evidence >= e)
    found = {"false_abstention": float((~answered[labels == 1]).mean()),
             "abstention_unanswerable": float((~answered[labels == 0]).mean())}
    if groups is not None:
        for kind in sorted(set(groups[labels == 0])):
            found[f"abstention_{kind.replace('-', '_')}"] = float((~answered[groups == kind]).mean())
    return found


def open_gate_scores(pipeline: QueryPipeline, questions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Best source relevance and best evidence score of each question, answered with both gates open."""
    relevance, evidence = [], []
    for question in tqdm(questions, desc="answering with open gates", unit="question"):
        trace = pipeline.answer(question, QueryOptions(answer_mode="extractive")).trace
        relevance.append(max((s["relevance"] for s in trace.details.get("sources", [])), default=-1.0))
        evidence.append(max((e["score"] for e in trace.details.get("evidence", [])), default=-1.0))
    return np.array(relevance), np.array(evidence)


def calibrate_near_miss(folder: Path, settings: Settings, max_false_abstention: float = 0.10,
                        limit: int | None = None) -> dict[str, object]:
    """Choose the gates on the near-miss set's tune half; report their rates on the report half."""
    from eval import nearmiss

    built = nearmiss.load(folder)
    items = built.items[:limit] if limit else built.items
    settings = settings.with_overrides(index_dir=Path(settings.index_dir) / "eval-cache" /
                                       f"{built.dataset.name}-{built.dataset.corpus_hash}-{settings.chunker}")
    embedder = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size)
    ingestor = build_index(built.dataset, settings, embedder)
    open_gates = settings.with_overrides(min_relevance=-1.0, min_evidence=-1.0)
    pipeline = QueryPipeline(open_gates, ingestor.index, embedder, generator_from_settings(settings))
    rel, ev = open_gate_scores(pipeline, [i.question for i in items])
    lab = np.array([int(i.answerable) for i in items])
    kinds = np.array([i.category for i in items])
    half = np.array([built.halves[i.id] for i in items])
    tune, report = half == "tune", half == "report"
    chosen = best_pair(rel[tune], ev[tune], lab[tune], kinds[tune], max_false_abstention)
    current = Settings()
    return {
        "dataset": built.dataset.name, "questions": len(items),
        "kinds": {k: int((kinds == k).sum()) for k in sorted(set(kinds))},
        "auc_evidence_near_miss": float(roc_auc_score(lab[kinds != "far-off"], ev[kinds != "far-off"])),
        "auc_evidence_far_off": float(roc_auc_score(lab[kinds != "near-miss"], ev[kinds != "near-miss"])),
        "tuned_on_tune_half": chosen,
        "report_half_at_tuned": rates(rel[report], ev[report], lab[report], chosen["min_relevance"],
                                      chosen["min_evidence"], kinds[report]),
        "report_half_at_defaults": {"min_relevance": current.min_relevance, "min_evidence": current.min_evidence,
                                    **rates(rel[report], ev[report], lab[report], current.min_relevance,
                                            current.min_evidence, kinds[report])},
        "scores": [{"id": i.id, "kind": i.category, "half": built.halves[i.id], "relevance": float(r),
                    "evidence": float(e)} for i, r, e in zip(items, rel, ev, strict=True)],
    }


def calibrate(folder: Path, settings: Settings, limit: int | None = None) -> dict[str, object]:
    dataset = load_beir(folder)
    half, answerable = split_corpus(dataset)
    settings = settings.with_overrides(index_dir=Path(settings.index_dir) / "eval-cache" /
                                       f"{half.name}-{dataset.corpus_hash}-{settings.chunker}")
    embedder = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size)
    ingestor = build_index(half, settings, embedder)
    open_gates = settings.with_overrides(min_relevance=-1.0, min_evidence=-1.0)
    pipeline = QueryPipeline(open_gates, ingestor.index, embedder, generator_from_settings(settings))
    qids = sorted(dataset.qrels)[:limit] if limit else sorted(dataset.qrels)
    rel, ev = open_gate_scores(pipeline, [dataset.queries[qid] for qid in qids])
    lab = np.array([int(answerable[qid]) for qid in qids])
    current = Settings()
    return {
        "dataset": dataset.name, "questions": len(qids), "answerable": int(lab.sum()),
        "auc_relevance": float(roc_auc_score(lab, rel)), "auc_evidence": float(roc_auc_score(lab, ev)),
        "best": best_pair(rel, ev, lab),
        "defaults": {"min_relevance": current.min_relevance, "min_evidence": current.min_evidence,
                     **rates(rel, ev, lab, current.min_relevance, current.min_evidence)},
        "scores": [{"id": q, "answerable": bool(a), "relevance": float(r), "evidence": float(e)}
                   for q, a, r, e in zip(qids, lab, rel, ev, strict=True)],
    }


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="BEIR-layout folder")
    parser.add_argument("--limit", type=int, help="only the first N questions (sorted by id)")
    parser.add_argument("--out", help="write the result (with every question's scores) as JSON here")
    parser.add_argument("--near-miss", action="store_true",
                        help="near-miss construction (eval.nearmiss): tune on one half, report on the other")
    parser.add_argument("--max-false-abstention", type=float, default=0.10)
    args = parser.parse_args(argv)
    if args.near_miss:
        result = calibrate_near_miss(Path(args.dataset), Settings(), args.max_false_abstention, args.limit)
    else:
        result = calibrate(Path(args.dataset), Settings(), args.limit)
    print(json.dumps({k: v for k, v in result.items() if k != "scores"}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
