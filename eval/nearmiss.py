"""Near-miss unanswerable questions from an extractive QA set (XQuAD), and answers scored per kind.

    python -m eval.nearmiss ../shared/eval/xquad_es [--half tune|report|all] [--answer-mode MODE] [--out F]
    python -m eval.nearmiss ../shared/eval/xquad_es --questions ../shared/eval/xquad_en   # English questions

A question is a *near miss* when its article is indexed without the paragraph that holds its answer:
it stays on the documents' topic (same article, same names) but what it asks is not there. A
*far-off* question's whole article is left out. One index serves every question: the articles that
have questions are sorted; every third pair of them is left out whole (far-off), and of the others
the paragraphs at odd positions are left out (their questions are near misses, the rest answerable).
Articles without questions stay indexed as distractors.

Halves: articles at even positions (in the sorted list of articles with questions) form the ``tune``
half, used to calibrate the gates (``eval.calibrate --near-miss``); the ``report`` half is never
tuned on.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from eval.beir import BeirDataset, load_answers, load_beir
from eval.configs import EvalConfig
from eval.qa import QAItem
from eval.runner import ConfigResult, Evaluator, build_index
from rag.offline import ensure_offline
from rag.settings import Settings

Half = Literal["tune", "report", "all"]


def _article(doc_id: str) -> str:
    return doc_id.rsplit("_", 1)[0] if "_" in doc_id else doc_id


def _position(doc_id: str) -> int:
    tail = doc_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


@dataclass
class NearMissSet:
    """The reduced corpus to index and every question with its kind and half."""

    dataset: BeirDataset
    items: list[QAItem]
    halves: dict[str, str]  # question id -> "tune" | "report"

    def select(self, half: Half) -> list[QAItem]:
        return [item for item in self.items if half == "all" or self.halves[item.id] == half]


def build(dataset: BeirDataset, answers: dict[str, list[str]], questions: dict[str, str] | None = None
          ) -> NearMissSet:
    """``questions``: the question texts to ask instead of the dataset's own, by question id (a parallel set's,
    e.g. XQuAD-en questions over XQuAD-es documents: the cross-lingual case)."""
    relevant = {q: next(iter(docs)) for q, docs in dataset.qrels.items() if docs}
    asked = sorted({_article(d) for d in relevant.values()})
    far_off = {a for i, a in enumerate(asked) if (i // 2) % 3 == 2}
    half_of = {a: ("tune" if i % 2 == 0 else "report") for i, a in enumerate(asked)}
    left_out = {d.id for d in dataset.corpus
                if _article(d.id) in far_off or (_article(d.id) in half_of and _position(d.id) % 2 == 1)}
    corpus = [d for d in dataset.corpus if d.id not in left_out]
    items, halves = [], {}
    for qid in sorted(relevant):
        doc = relevant[qid]
        if _article(doc) in far_off:
            kind = "far-off"
        elif doc in left_out:
            kind = "near-miss"
        else:
            kind = "answerable"
        answerable = kind == "answerable"
        asked = questions.get(qid, dataset.queries[qid]) if questions else dataset.queries[qid]
        items.append(QAItem(qid, asked, tuple(answers.get(qid, ())) if answerable else (),
                            doc if answerable else None, (), answerable, kind))
        halves[qid] = half_of[_article(doc)]
    reduced = replace(dataset, name=f"{dataset.name}-nearmiss", corpus=corpus)
    return NearMissSet(reduced, items, halves)


def load(folder: Path, questions_from: Path | None = None) -> NearMissSet:
    """The near-miss set of ``folder``; with ``questions_from`` (a parallel set with the same question ids),
    that set's questions are asked over ``folder``'s documents."""
    questions = load_beir(questions_from).queries if questions_from else None
    return build(load_beir(folder), load_answers(folder), questions)


def evaluate(folder: Path, settings: Settings, half: Half = "report", answer_mode: str = "extractive",
             limit: int | None = None, questions_from: Path | None = None) -> ConfigResult:
    """Answer the chosen half of the near-miss set with the given settings; metrics per kind."""
    nearmiss = load(folder, questions_from)
    items = nearmiss.select(half)[:limit] if limit else nearmiss.select(half)
    evaluator = Evaluator(settings)
    index_settings = settings.with_overrides(index_dir=Path(settings.index_dir) / "eval-cache" /
                                             f"{nearmiss.dataset.name}-{nearmiss.dataset.corpus_hash}-"
                                             f"{settings.chunker}")
    ingestor = build_index(nearmiss.dataset, index_settings, evaluator.embedder)
    config = EvalConfig(chunker=settings.chunker, mode=settings.retrieval_mode,
                        rerank=settings.rerank, expansion=tuple(settings.query_expansion), answer_mode=answer_mode)
    result = ConfigResult(config)
    evaluator._answers(items, ingestor.index, config, result)
    return result


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="BEIR-layout folder with answers.jsonl (XQuAD)")
    parser.add_argument("--half", choices=["tune", "report", "all"], default="report")
    parser.add_argument("--answer-mode", default=None, help="default: the settings' answer_mode")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--questions", metavar="FOLDER",
                        help="ask a parallel set's questions (same ids) over the dataset's documents, e.g. "
                             "XQuAD-en questions over XQuAD-es documents (cross-lingual)")
    parser.add_argument("--out", help="write metrics and per-question rows as JSON here")
    args = parser.parse_args(argv)
    settings = Settings()
    mode = args.answer_mode or settings.answer_mode
    questions = Path(args.questions) if args.questions else None
    result = evaluate(Path(args.dataset), settings, args.half, mode, args.limit, questions)
    summary = {"dataset": args.dataset, "questions_from": args.questions, "half": args.half, "answer_mode": mode,
               "questions": len(result.rows), "metrics": result.metrics, "latency_ms": result.latency_ms}
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps({**summary, "rows": result.rows}, indent=2, ensure_ascii=False,
                                             default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
