import math
import random

import pytest
import pytrec_eval

from eval.metrics import evaluate_run, hit_rate, mrr, ndcg, recall


def test_formulas_on_a_hand_checked_ranking():
    qrels = {"d1": 2, "d3": 1, "d9": 1}
    ranking = ["d1", "d2", "d3"]
    assert hit_rate(ranking, qrels, 1) == 1.0
    assert mrr(["d2", "d3"], qrels, 10) == 0.5
    assert recall(ranking, qrels, 3) == pytest.approx(2 / 3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(ranking, qrels, 3) == pytest.approx((2 / math.log2(2) + 1 / math.log2(4)) / idcg)


def test_query_without_results_counts_as_zero():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    scores = evaluate_run({"q1": ["d1"]}, qrels, (10,))
    assert scores["hit_rate@10"] == 0.5  # pytrec_eval would drop q2 and report 1.0


def test_matches_pytrec_eval_on_random_graded_rankings():
    rng = random.Random(1234)
    docs = [f"d{i:03d}" for i in range(60)]
    qrels = {f"q{q}": {d: rng.choice([1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 8))} for q in range(200)}
    run = {q: rng.sample(docs, rng.randint(1, 40)) for q in qrels}
    # Strictly decreasing scores so pytrec_eval's tie-breaking cannot reorder the ranking.
    trec_run = {q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in run.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.1,5,10", "recip_rank", "recall.5,10", "success.1,5,10"})
    reference = evaluator.evaluate(trec_run)
    for q, ranking in run.items():
        ref = reference[q]
        for k in (1, 5, 10):
            assert ndcg(ranking, qrels[q], k) == pytest.approx(ref[f"ndcg_cut_{k}"], abs=1e-9)
            assert hit_rate(ranking, qrels[q], k) == pytest.approx(ref[f"success_{k}"], abs=1e-9)
        for k in (5, 10):
            assert recall(ranking, qrels[q], k) == pytest.approx(ref[f"recall_{k}"], abs=1e-9)
        # trec_eval's recip_rank has no cut-off; with a cut-off beyond the ranking length they agree.
        assert mrr(ranking, qrels[q], 1000) == pytest.approx(ref["recip_rank"], abs=1e-9)
