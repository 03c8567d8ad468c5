"""Calibrate the abstention gates (``min_relevance``, ``min_evidence``) on a development set.

    python -m eval.calibrate ../shared/eval/xquad_es [--limit N] [--out calibration.json]
    python -m eval.calibrate ../shared/eval/xquad_es --near-miss   # tune on near misses, report on the other half
    python -m eval.calibrate --fit-answerability ../shared/eval/xquad_es ../shared/eval/xquad_en --cross-lingual
    python -m eval.calibrate --fit-answerability ../shared/eval/xquad_es ../shared/eval/xquad_en --cross-lingual \
        --devsets eval/sets/laws_es.jsonl eval/sets/kinds_es.jsonl --devsets-index index/eval-cache/devsets/index

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

``--fit-answerability`` fits the evidence gate's model (``rag.answerability``) on the near-miss sets'
``tune`` halves (every sentence or table row of each question's sources, positive when it holds the gold
answer), chooses its threshold there, and writes ``rag/answerability.json`` (or ``--out``) with its rates
on the ``report`` halves; the rule score's best threshold on the same halves is printed beside them.
With ``--cross-lingual`` (parallel sets such as XQuAD es/en) each set's documents are also asked with the
other set's questions ("en>es": English questions over Spanish documents); units in another language than the
question then get a model of their own, fit on all tune rows and thresholded on the crossed tune halves, while
the main model is fit and thresholded on the same-language sets.
With ``--devsets`` the development sets over other kinds of documents (``eval/sets``: laws, agreements, tenders,
regulations, leaflets in one index) join the fit and the threshold's choice, each set a group that weighs as much
as one near-miss set, so the gate learns what an answer looks like in a document that is not a Wikipedia article.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from eval.beir import BeirDataset, load_beir
from eval.runner import build_index
from rag.answerability import FEATURES, AnswerabilityModel
from rag.embedder import SentenceTransformerEmbedder
from rag.generator import generator_from_settings
from rag.grounding import source_units
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


def _near_miss_pipeline(folder: Path, settings: Settings, limit: int | None, questions_from: Path | None = None,
                        **overrides: object):
    """The near-miss set built from ``folder`` (its first ``limit`` questions; ``questions_from``: a parallel
    set's questions instead), indexed, and a pipeline over it with the rule-score gate and ``overrides``."""
    from eval import nearmiss

    built = nearmiss.load(folder, questions_from)
    items = built.items[:limit] if limit else built.items
    settings = settings.with_overrides(index_dir=Path(settings.index_dir) / "eval-cache" /
                                       f"{built.dataset.name}-{built.dataset.corpus_hash}-{settings.chunker}")
    embedder = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size)
    ingestor = build_index(built.dataset, settings, embedder)
    pipeline = QueryPipeline(settings.with_overrides(evidence_gate="scores", **overrides), ingestor.index, embedder,
                             generator_from_settings(settings))
    return built, items, pipeline


def calibrate_near_miss(folder: Path, settings: Settings, max_false_abstention: float = 0.10,
                        limit: int | None = None) -> dict[str, object]:
    """Choose the gates on the near-miss set's tune half; report their rates on the report half."""
    built, items, pipeline = _near_miss_pipeline(folder, settings, limit, min_relevance=-1.0, min_evidence=-1.0)
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
    open_gates = settings.with_overrides(min_relevance=-1.0, min_evidence=-1.0, evidence_gate="scores")
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


@dataclass
class QuestionUnits:
    """One question of a near-miss set with its units' answerability features (gates open)."""

    id: str
    kind: str
    half: str
    language: str  # the question's
    group: str  # the set it belongs to: the question language, or "en>es" for questions over other-language documents
    rows: np.ndarray  # one row of FEATURES per shortlisted unit (all parts of the question)
    rule: np.ndarray  # the rule score of each of those units
    gold: np.ndarray  # unit contains a gold answer (answerable questions only)
    gold_source: np.ndarray  # unit comes from the gold document


def _searched_units(pipeline: QueryPipeline, item, top_k: int):
    """One question searched as the pipeline does: its search, and the features, rule scores, holds-the-gold and
    from-the-gold-document flags of each shortlisted sentence of its sources (all parts of the question)."""
    from eval.answers import contains_answer

    found = pipeline.search(item.question)
    sources, _ = pipeline.sources(found, top_k)
    units = source_units(sources)
    rows, rule, gold, gold_source = [np.zeros((0, len(FEATURES)))], [np.zeros(0)], [], []
    for part in found.parts if units else []:
        part_rule, keep, part_rows = pipeline.unit_features(part, sources, found.language, units, len(found.parts))
        shortlisted = [units[i] for i in keep]
        rows.append(part_rows)
        rule.append(part_rule[keep])
        gold += [item.answerable and bool(contains_answer(u.text, item.answers)) for u in shortlisted]
        gold_source += [sources[u.source_index - 1].chunk.metadata.source == item.source for u in shortlisted]
    return found, np.vstack(rows), np.concatenate(rule), np.array(gold, dtype=bool), np.array(gold_source, dtype=bool)


def question_units(folder: Path, settings: Settings, limit: int | None = None, questions_from: Path | None = None
                   ) -> list[QuestionUnits]:
    """Every question of the near-miss set built from ``folder`` (with ``questions_from``: a parallel set's
    questions over ``folder``'s documents), searched as the pipeline does, with the features of each sentence
    or table row of its sources."""
    built, items, pipeline = _near_miss_pipeline(folder, settings, limit, questions_from)
    found_units = []
    for item in tqdm(items, desc=f"features {built.dataset.name}", unit="question"):
        found, rows, rule, gold, gold_source = _searched_units(pipeline, item, settings.top_k)
        documents = next((h.chunk.metadata.language for h in found.hits if h.chunk.metadata.language), None)
        group = found.language if documents in (None, found.language) or questions_from is None \
            else f"{found.language}>{documents}"
        found_units.append(QuestionUnits(item.id, item.category, built.halves[item.id], found.language, group,
                                         rows, rule, gold, gold_source))
    return found_units


def devset_question_units(sets: list[Path], index_dir: Path, settings: Settings) -> list[QuestionUnits]:
    """Every question of the development sets (``eval/sets/*.jsonl``, with ``half``) over their one index (the
    folder ``eval.devsets`` builds with ``--index``: laws, agreements, tenders and leaflets in one index), searched
    as the pipeline does, with the features of each sentence of its sources. Group: the set's name; a near miss
    is a ``near-miss`` question, an answerable one ``answerable``."""
    from eval.qa import load_qa
    from rag.embedder import SentenceTransformerEmbedder
    from rag.index import DocumentIndex

    settings = settings.with_overrides(index_dir=index_dir)
    embedder = SentenceTransformerEmbedder(settings.embedder_model, batch_size=settings.embed_batch_size)
    pipeline = QueryPipeline(settings.with_overrides(evidence_gate="scores"), DocumentIndex(index_dir), embedder,
                             generator_from_settings(settings))
    found_units = []
    for path in sets:
        for item in tqdm(load_qa(path), desc=f"features {path.stem}", unit="question"):
            found, rows, rule, gold, gold_source = _searched_units(pipeline, item, settings.top_k)
            found_units.append(QuestionUnits(item.id, "answerable" if item.answerable else "near-miss",
                                             item.half or "tune", found.language, path.stem, rows, rule, gold,
                                             gold_source))
    return found_units


def answerability_rates(questions: list[QuestionUnits], scores: list[np.ndarray], threshold: float
                        ) -> dict[str, float]:
    """Per kind: abstention on near misses and far-off questions, false abstention, and the share of
    answerable questions whose best unit holds the answer / comes from the gold document while answered."""
    best = [(q, int(s.argmax()) if len(s) else -1, float(s.max()) if len(s) else -np.inf)
            for q, s in zip(questions, scores, strict=True)]
    answerable = [(q, i, b) for q, i, b in best if q.kind == "answerable"]
    found: dict[str, float] = {"questions": float(len(best))}
    for kind in ("near-miss", "far-off"):
        group = [b for q, _, b in best if q.kind == kind]
        if group:
            found[f"abstention_{kind.replace('-', '_')}"] = float(np.mean([b < threshold for b in group]))
    if answerable:
        found["false_abstention"] = float(np.mean([b < threshold for _, _, b in answerable]))
        found["best_unit_holds_answer"] = float(np.mean([b >= threshold and q.gold[i] for q, i, b in answerable]))
        found["best_unit_cites_gold_source"] = float(np.mean([b >= threshold and q.gold_source[i]
                                                              for q, i, b in answerable]))
    return found


def _balanced(rates_: dict[str, float]) -> float:
    """Mean of answered-when-answerable and abstained-on-each-kind (near-miss, far-off), as ``best_pair``."""
    parts = [1 - rates_["false_abstention"]] + [v for k, v in rates_.items() if k.startswith("abstention_")]
    return float(np.mean(parts))


def all_question_units(folders: list[Path], settings: Settings, limit: int | None = None,
                       cross_lingual: bool = False, cache: Path | None = None) -> list[QuestionUnits]:
    """``question_units`` of every folder's near-miss set, and with ``cross_lingual`` of every other folder's
    questions over each folder's documents (parallel sets: XQuAD-en questions over XQuAD-es documents and the
    other way). ``cache``: a pickle of the result, reused when it exists (delete it when the code changes)."""
    import pickle

    if cache and cache.exists():  # plain dicts: the class lives in __main__ when this runs as a command
        return [QuestionUnits(**fields) for fields in pickle.loads(cache.read_bytes())]
    pairs = [(folder, None) for folder in folders]
    if cross_lingual:
        pairs += [(docs, asked) for docs in folders for asked in folders if asked != docs]
    questions = [q for docs, asked in pairs for q in question_units(docs, settings, limit, asked)]
    if cache:
        cache.write_bytes(pickle.dumps([vars(q) for q in questions]))
    return questions


def _best_threshold(tuned: dict[str, tuple[list[QuestionUnits], list[np.ndarray]]], digits: int = 4) -> float:
    """The threshold with the best mean ``_balanced`` rate over the groups of ``tuned``."""
    candidates = np.unique(np.round(np.concatenate([s for _, ss in tuned.values() for s in ss]), digits))
    return float(max(candidates, key=lambda t: np.mean([_balanced(answerability_rates(qs, ss, t))
                                                          for qs, ss in tuned.values()])))


def _group_weights(questions: list[QuestionUnits]) -> np.ndarray:
    """One weight per unit row so that every group weighs the same in the fit (a development set of 60 questions
    counts as much as a near-miss set of 600)."""
    rows = {g: sum(len(q.rows) for q in questions if q.group == g) for g in {q.group for q in questions}}
    mean = float(np.mean(list(rows.values())))
    return np.concatenate([np.full(len(q.rows), mean / rows[q.group]) for q in questions])


def fit_answerability(folders: list[Path], settings: Settings, out: Path, limit: int | None = None,
                      cross_lingual: bool = False, cache: Path | None = None, devsets: list[Path] | None = None,
                      devsets_index: Path | None = None, devsets_cache: Path | None = None,
                      keep_cross_lingual: AnswerabilityModel | None = None) -> dict[str, object]:
    """Fit the answerability model on the tune halves of the near-miss sets of ``folders`` (pooled), choose its
    threshold there (best mean over the same-language sets of answered-when-answerable and abstained-on-each-
    kind), write it to ``out`` with its rates on the report halves, and return them beside the rule score's.

    With ``cross_lingual`` each folder's documents are also asked in the other folders' language ("en>es"), and
    units in another language than the question get a model of their own: fit on all tune rows (crossed ones
    included) without ``context_lexical`` (0 there), its threshold chosen on the crossed tune halves."""
    from rag.answerability import fit
    from rag.embedder import dense_model_id

    questions = all_question_units(folders, settings, limit, cross_lingual, cache)
    fitted_on = ", ".join(f"{f.name} tune half" for f in folders)
    if devsets:
        import pickle

        if devsets_cache and devsets_cache.exists():
            extra = [QuestionUnits(**fields) for fields in pickle.loads(devsets_cache.read_bytes())]
        else:
            extra = devset_question_units(devsets, devsets_index, settings)
            if devsets_cache:
                devsets_cache.write_bytes(pickle.dumps([vars(q) for q in extra]))
        questions += extra
        fitted_on += ", " + ", ".join(f"{p.stem} tune half" for p in devsets)
    dense = dense_model_id(settings.dense_model, settings.embedder_model)
    tune = [q for q in questions if q.half == "tune"]
    same = [q for q in tune if ">" not in q.group]
    model = fit(np.vstack([q.rows for q in same]), np.concatenate([q.gold for q in same]).astype(int), dense,
                fitted_on=fitted_on, sample_weight=_group_weights(same))
    groups = sorted({q.group for q in questions})

    def by_group(half: str, score, crossed: bool | None = None
                 ) -> dict[str, tuple[list[QuestionUnits], list[np.ndarray]]]:
        """Questions of ``half`` per group with their scores; ``crossed``: only crossed (True) or same-language
        (False) groups."""
        chosen = {g: [q for q in questions if q.half == half and q.group == g] for g in groups
                  if crossed is None or crossed == (">" in g)}
        return {g: (qs, [score(q) for q in qs]) for g, qs in chosen.items() if qs}

    model = replace(model, threshold=_best_threshold(by_group("tune", lambda q: model.probabilities(q.rows),
                                                              crossed=False)))
    if cross_lingual:
        other = fit(np.vstack([q.rows for q in tune]), np.concatenate([q.gold for q in tune]).astype(int), dense,
                    fitted_on=", ".join(f"{f.name} tune half" for f in folders) +
                    " (and each asked in the other's language)",
                    features=tuple(f for f in FEATURES if f != "context_lexical"))
        other = replace(other, threshold=_best_threshold(by_group("tune", lambda q: other.probabilities(q.rows),
                                                                  crossed=True)))
        model = replace(model, cross_lingual=other, fitted_on=model.fitted_on +
                        "; units in another language: " + other.fitted_on)
    elif keep_cross_lingual is not None and keep_cross_lingual.cross_lingual is not None:
        kept = keep_cross_lingual.cross_lingual  # put on the new main model's scale by ``probabilities``
        model = replace(model, cross_lingual=kept, fitted_on=model.fitted_on +
                        "; units in another language: " + kept.fitted_on + " (kept from the model it replaces)")

    def probability(q: QuestionUnits) -> np.ndarray:
        return model.probabilities(q.rows)

    report = by_group("report", probability)
    rule = by_group("report", lambda q: q.rule)
    rule_threshold = _best_threshold(by_group("tune", lambda q: q.rule, crossed=False), digits=3)

    def auc(qs: list[QuestionUnits], ss: list[np.ndarray]) -> float:
        labels_ = [q.kind == "answerable" for q in qs]
        return float(roc_auc_score(labels_, [float(s.max()) if len(s) else -1.0 for s in ss]))

    summary = {
        "threshold": model.threshold,
        "cross_lingual_threshold": model.cross_lingual.threshold if model.cross_lingual else None,
        "report_half": {lang: {"auc": auc(*report[lang]), **answerability_rates(*report[lang], model.threshold)}
                        for lang in report},
        "tune_half": {g: answerability_rates(qs, ss, model.threshold)
                      for g, (qs, ss) in by_group("tune", probability).items()},
        "rule_score_report_half": {lang: {"auc": auc(*rule[lang]), "threshold": rule_threshold,
                                          **answerability_rates(*rule[lang], rule_threshold)} for lang in rule},
        "weights": dict(zip(model.features, model.weights, strict=True)),
        "cross_lingual_weights": dict(zip(model.cross_lingual.features, model.cross_lingual.weights, strict=True))
        if model.cross_lingual else None,
    }
    final = replace(model, report={lang: {k: round(v, 4) for k, v in r.items()}
                                   for lang, r in summary["report_half"].items()})
    final.save(out)
    return summary


def main(argv: list[str] | None = None) -> int:
    ensure_offline()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="+", help="BEIR-layout folder (several with --fit-answerability)")
    parser.add_argument("--limit", type=int, help="only the first N questions (sorted by id)")
    parser.add_argument("--out", help="write the result (with every question's scores) as JSON here; with "
                                      "--fit-answerability the model file (default: the shipped one)")
    parser.add_argument("--near-miss", action="store_true",
                        help="near-miss construction (eval.nearmiss): tune on one half, report on the other")
    parser.add_argument("--fit-answerability", action="store_true",
                        help="fit the evidence gate's answerability model on the near-miss sets' tune halves")
    parser.add_argument("--cross-lingual", action="store_true",
                        help="with --fit-answerability: also fit on each set's documents asked with the other "
                             "(parallel) set's questions, e.g. English questions over Spanish documents")
    parser.add_argument("--features-cache", metavar="FILE",
                        help="with --fit-answerability: keep the computed features in FILE and reuse them when it "
                             "exists (delete it when the code or the settings change)")
    parser.add_argument("--keep-cross-lingual", action="store_true",
                        help="with --fit-answerability and without --cross-lingual: keep the shipped model's model "
                             "for units in another language (refit only the main one)")
    parser.add_argument("--devsets", nargs="+", metavar="SET",
                        help="with --fit-answerability: also fit on these development sets' tune halves "
                             "(eval/sets/*.jsonl, questions over laws, agreements, tenders, leaflets...), each a group "
                             "of its own in the threshold's choice and the report")
    parser.add_argument("--devsets-index", metavar="DIR",
                        help="the index folder the development sets are asked over (eval.devsets --index DIR/..: "
                             "the folder holding manifest.json)")
    parser.add_argument("--devsets-cache", metavar="FILE", help="as --features-cache, for the development sets")
    parser.add_argument("--max-false-abstention", type=float, default=0.10)
    args = parser.parse_args(argv)
    if args.fit_answerability:
        from rag.answerability import DEFAULT_PATH

        cache = Path(args.features_cache) if args.features_cache else None
        if args.devsets and not args.devsets_index:
            parser.error("--devsets needs --devsets-index (the index eval.devsets built over their documents)")
        result = fit_answerability([Path(d) for d in args.dataset], Settings(), Path(args.out or DEFAULT_PATH),
                                   args.limit, args.cross_lingual, cache,
                                   [Path(p) for p in args.devsets or []],
                                   Path(args.devsets_index) if args.devsets_index else None,
                                   Path(args.devsets_cache) if args.devsets_cache else None,
                                   AnswerabilityModel.load() if args.keep_cross_lingual else None)
        print(json.dumps(result, indent=2))
        return 0
    if len(args.dataset) > 1:
        parser.error("one dataset at a time, except with --fit-answerability")
    if args.near_miss:
        result = calibrate_near_miss(Path(args.dataset[0]), Settings(), args.max_false_abstention, args.limit)
    else:
        result = calibrate(Path(args.dataset[0]), Settings(), args.limit)
    print(json.dumps({k: v for k, v in result.items() if k != "scores"}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
