"""Follow-up questions, measured: does a follow-up find what the same question asked in full finds?

Pairs are built from a BEIR-layout QA set (XQuAD): two questions on the same paragraph, the first asked in
full, the second turned into a follow-up the way people shorten one — the words it shares with the first
question or with the article's title are dropped (the topic is already said) and it opens with "¿Y …" /
"And …". Only pairs where something was dropped count. For each pair, hit@5 (the gold paragraph among the
first five documents) of: the second question in full, the follow-up alone, and the follow-up with the first
question as history (``rag.followup``). The rules were written from hand-made examples, never tuned here.

Usage: python -m eval.followups ../shared/eval/xquad_es [--limit 200]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from eval.beir import BeirDataset, load_beir
from eval.runner import build_index
from rag.analysis import detect_language, fold_accents, stopwords
from rag.embedder import SentenceTransformerEmbedder
from rag.generator import generator_from_settings
from rag.index import DocumentIndex
from rag.offline import ensure_offline
from rag.pipeline import QueryOptions, QueryPipeline
from rag.settings import Settings

_WORD = re.compile(r"[^\W_]+")
_OPENER = {"es": "¿Y", "en": "And"}


@dataclass(frozen=True)
class FollowUpPair:
    previous: str  # asked in full first
    full: str  # the second question in full
    follow_up: str  # the second question as a follow-up
    gold: str  # the paragraph that answers it


def follow_up_of(question: str, previous: str, title: str, language: str) -> str | None:
    """``question`` without the content words it shares with ``previous`` or ``title``; None when it shares
    none (nothing to leave unsaid) or nothing of its own would be left."""
    stop = stopwords(language)
    said = {fold_accents(w.lower()) for w in _WORD.findall(f"{previous} {title}")} - stop
    words = _WORD.findall(question)
    kept = [w for w in words if fold_accents(w.lower()) not in said]
    dropped = len(words) - len(kept)
    if not dropped or not [w for w in kept if fold_accents(w.lower()) not in stop]:
        return None
    body = " ".join(kept)
    return f"{_OPENER[language]} {body[0].lower() + body[1:]}?"


def build_pairs(dataset: BeirDataset) -> list[FollowUpPair]:
    titles = {d.id: d.title for d in dataset.corpus}
    by_paragraph: dict[str, list[str]] = {}
    for qid in sorted(dataset.qrels):
        gold = next(iter(dataset.qrels[qid]))
        by_paragraph.setdefault(gold, []).append(qid)
    pairs = []
    for gold, qids in sorted(by_paragraph.items()):
        for first, second in zip(qids, qids[1:], strict=False):
            previous, full = dataset.queries[first], dataset.queries[second]
            language = detect_language(full)
            follow = follow_up_of(full, previous, titles.get(gold, ""), language if language in _OPENER else "en")
            if follow is not None:
                pairs.append(FollowUpPair(previous, full, follow, gold))
    return pairs


def hit_at(pipeline: QueryPipeline, question: str, gold: str, history: tuple = (), k: int = 5) -> bool:
    hits = pipeline.search(question, QueryOptions(history=history)).hits
    ranked: list[str] = []
    for hit in hits:
        if hit.chunk.metadata.source not in ranked:
            ranked.append(hit.chunk.metadata.source)
    return gold in ranked[:k]


def main() -> None:
    parser = argparse.ArgumentParser(description="follow-up questions: hit@5 against the same questions in full")
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--limit", type=int, help="only the first N pairs")
    parser.add_argument("--index", type=Path, default=Path(".rag-index"), help="evaluation indexes are cached here")
    parser.add_argument("--show", type=int, default=5, help="print this many pairs")
    args = parser.parse_args()
    ensure_offline()
    dataset = load_beir(args.dataset)
    pairs = build_pairs(dataset)[: args.limit]
    settings = Settings(index_dir=args.index / "eval-cache" / f"followups-{dataset.name}-{dataset.corpus_hash}")
    embedder = SentenceTransformerEmbedder(settings.embedder_model)
    build_index(dataset, settings, embedder)
    # Retrieval only: the model is never loaded (generator_from_settings loads it on first use).
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder,
                             generator_from_settings(settings))
    counts = {"full": 0, "alone": 0, "with history": 0}
    for pair in pairs:
        counts["full"] += hit_at(pipeline, pair.full, pair.gold)
        counts["alone"] += hit_at(pipeline, pair.follow_up, pair.gold)
        counts["with history"] += hit_at(pipeline, pair.follow_up, pair.gold,
                                         ({"role": "user", "content": pair.previous},))
    for pair in pairs[: args.show]:
        print(f"  {pair.previous}  →  {pair.follow_up}   (in full: {pair.full})")
    n = max(len(pairs), 1)
    print(f"{dataset.name}: {len(pairs)} pairs; hit@5 asked in full {counts['full'] / n:.3f}, follow-up alone "
          f"{counts['alone'] / n:.3f}, follow-up with the conversation {counts['with history'] / n:.3f}")


if __name__ == "__main__":
    main()
