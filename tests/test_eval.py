"""`rag eval` end to end on small sets written here, with the real embedder, Chroma, BM25 and matplotlib."""

import json

import pytest
import pytrec_eval

from eval.answers import contains_answer, exact_match, normalize_answer, token_f1
from eval.beir import load_beir
from eval.configs import grid, parse_axes
from rag.cli import main
from rag.settings import Settings
from tests.conftest import DATA

DOCS = {
    "d1": ("Paracetamol", "El paracetamol alivia el dolor y baja la fiebre."),
    "d2": ("Termostato", "The thermostat connects only to 2.4 GHz Wi-Fi networks."),
    "d3": ("Teletrabajo", "Cada persona puede teletrabajar hasta tres días por semana."),
    "d4": ("Garantía", "The warranty covers manufacturing defects for two years."),
}
QUERIES = {"q1": "¿Qué medicamento baja la fiebre?", "q2": "Which Wi-Fi band does the thermostat need?",
           "q3": "¿Cuántos días se puede teletrabajar?", "q4": "How long is the warranty?"}
ANSWERS = {"q1": ["el paracetamol"], "q2": ["2.4 GHz"], "q3": ["tres días", "3 días"], "q4": ["two years"]}


@pytest.fixture
def beir_dir(tmp_path):
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(
        json.dumps({"_id": d, "title": t, "text": x}, ensure_ascii=False) for d, (t, x) in DOCS.items()))
    (folder / "queries.jsonl").write_text("\n".join(
        json.dumps({"_id": q, "text": t}, ensure_ascii=False) for q, t in QUERIES.items()))
    (folder / "answers.jsonl").write_text("\n".join(
        json.dumps({"_id": q, "answers": a}, ensure_ascii=False) for q, a in ANSWERS.items()))
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                              "".join(f"q{i}\td{i}\t1\n" for i in range(1, 5)))
    return folder


def test_grid_writes_every_report_file_and_a_trec_run_that_pytrec_eval_agrees_with(beir_dir, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["eval", str(beir_dir), "--index", str(tmp_path / "idx"), "--grid", "mode=bm25,hybrid;rerank=off,on",
            "--out", str(out)]
    assert main(args) == 0
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "run.trec", "metrics.png", "latency.png"}
    report = json.loads((out / "report.json").read_text())
    names = [r["config"]["name"] for r in report["results"]]
    assert names == ["sentence-window/bm25/decompose", "sentence-window/bm25+rerank/decompose",
                     "sentence-window/hybrid/decompose", "sentence-window/hybrid+rerank/decompose"]
    assert report["versions"]["sentence-transformers"] and report["timings_s"]["total"] > 0
    for result in report["results"]:
        metrics = result["metrics"]
        assert {f"{m}@{k}" for m in ("hit_rate", "mrr", "ndcg", "recall") for k in (1, 3, 5, 10, 100)} <= set(metrics)
        # Four documents on four unrelated topics: each query's own document must come first.
        assert metrics["hit_rate@1"] == metrics["mrr@10"] == 1.0, result["config"]["name"]
    assert "| sentence-window/hybrid/decompose |" in (out / "report.md").read_text()
    # The TREC run, read by an outside tool, gives the same NDCG.
    run: dict[str, dict[str, float]] = {}
    for line in (out / "runs" / "sentence-window_hybrid_decompose.trec").read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(1, 5)}
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    hybrid = next(r for r in report["results"] if r["config"]["name"] == "sentence-window/hybrid/decompose")
    assert hybrid["metrics"]["ndcg@10"] == pytest.approx(
        sum(v["ndcg_cut_10"] for v in reference.values()) / len(reference), abs=1e-9)

    # A second run reuses the cached index: nothing is embedded again.
    capsys.readouterr()
    second = tmp_path / "second"
    assert main(["eval", str(beir_dir), "--index", str(tmp_path / "idx"), "--config", "bm25", "--out", str(second)]) == 0
    assert "indexing" not in capsys.readouterr().err

    # --compare: identical numbers pass; a worse report is flagged and fails the command.
    assert main(["eval", "--compare", str(out / "report.json"), str(out / "report.json")]) == 0
    worse = json.loads((out / "report.json").read_text())
    worse["results"][0]["metrics"]["ndcg@10"] -= 0.2
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    assert main(["eval", "--compare", str(out / "report.json"), str(tmp_path / "worse.json")]) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_beir_answers_are_scored(beir_dir, tmp_path):
    out = tmp_path / "answers"
    assert main(["eval", str(beir_dir), "--index", str(tmp_path / "idx"), "--answers", "--answer-mode", "extractive",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "report.json").read_text())["results"][0]["metrics"]
    assert metrics["citation_accuracy"] >= 0.75 and metrics["answer_contains_gold"] >= 0.75
    assert metrics["faithfulness"] >= 0.75  # quotes are faithful
    # Extractive answers quote "title + sentence [1]", after the short answer when the question asks for a
    # duration ("tres días por semana — …", "two years — …"); token F1 by hand after normalisation (accents,
    # punctuation, citation marks and articles dropped), gold fully recalled so F1 = 2P / (P + 1):
    # q1 1 of 7 tokens ("paracetamol paracetamol alivia dolor y baja fiebre"), q2 3 of 11 ("2 4 ghz" in
    # "termostato thermostat connects only to 2 4 ghz wi fi networks"), q3 2 of 4 + 10, q4 2 of 2 + 8.
    by_hand = [2 * p / (p + 1) for p in (1 / 7, 3 / 11, 2 / 14, 2 / 10)]
    assert metrics["token_f1"] == pytest.approx(sum(by_hand) / 4)
    assert metrics["exact_match"] == 0.0  # a whole quoted sentence is never exactly the gold span
    assert metrics["short_answered"] == 0.5  # the two duration questions
    assert metrics["false_abstention"] <= 0.25


def test_qa_layout_over_the_demo_documents(tmp_path):
    out = tmp_path / "qa"
    assert main(["eval", str(DATA / "qa.jsonl"), "--index", str(tmp_path / "idx"), "--answer-mode", "extractive",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    metrics = report["results"][0]["metrics"]
    assert metrics["citation_accuracy"] >= 0.8
    assert metrics["abstention_unanswerable"] >= 0.75
    assert metrics["false_abstention"] <= 0.2
    rows = next(iter(report["rows"].values()))
    assert all("retrieval" in r["stages_ms"] for r in rows)


def test_bad_layouts_name_the_file(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="corpus.jsonl"):
        load_beir(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\nnot json\n')
    assert main(["eval", str(bad), "--docs", str(tmp_path)]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown retrieval mode 'sparse'"):
        parse_axes("mode=sparse")


def test_grid_axes_multiply_with_chunkers_slowest():
    configs = grid("chunker=fixed,semantic;mode=bm25,dense;expansion=none,decompose+hyde;answer=extractive",
                   Settings())
    assert len(configs) == 8 and [c.chunker for c in configs[:4]] == ["fixed"] * 4
    assert configs[1].expansion == ("decompose", "hyde") and configs[0].answer_mode == "extractive"
    union = grid("chunker=fixed,semantic;mode=bm25 | chunker=fixed;mode=bm25,hybrid;rerank=on", Settings())
    assert [(c.chunker, c.mode, c.rerank) for c in union] == [
        ("fixed", "bm25", True), ("fixed", "hybrid", True), ("semantic", "bm25", True)]


@pytest.mark.parametrize(("prediction", "answers", "em", "f1"), [
    ("El Paracetamol.", ["paracetamol"], 1.0, 1.0),
    ("¿Días?", ["dias"], 1.0, 1.0),
    ("Los tres días de la semana [1]", ["tres días"], 0.0, 2 * (0.5 * 1) / 1.5),
    ("The Denver Broncos", ["Denver Broncos", "Broncos"], 1.0, 1.0),
    ("Tampa", ["Glendale, Arizona"], 0.0, 0.0),
])
def test_exact_match_and_f1_normalise_spanish_and_english(prediction, answers, em, f1):
    assert exact_match(prediction, answers) == em
    assert token_f1(prediction, answers) == pytest.approx(f1)


def test_normalisation_and_containment():
    assert normalize_answer("¡La Constitución Española!") == "constitucion española"
    assert contains_answer("Se puede teletrabajar tres días [1].", ["tres días"]) == 1.0
    assert contains_answer("trescientos", ["tres"]) == 0.0  # whole words only


def test_calibration_holds_out_half_the_corpus_and_picks_thresholds(beir_dir, tmp_path):
    from eval.calibrate import best_pair, calibrate

    result = calibrate(beir_dir, Settings(index_dir=tmp_path / "idx"))
    scores = {s["id"]: s for s in result["scores"]}
    assert {q for q, s in scores.items() if s["answerable"]} == {"q1", "q3"}  # d1 and d3 indexed
    assert all(scores[q]["evidence"] > scores[u]["evidence"] for q in ("q1", "q3") for u in ("q2", "q4"))
    assert result["answerable"] == 2 and result["auc_evidence"] == 1.0  # every answerable above every other
    assert result["best"]["balanced_accuracy"] == 1.0

    import numpy as np

    pair = best_pair(np.array([0.9, 0.8, 0.2, 0.7]), np.array([0.9, 0.1, 0.9, 0.2]), np.array([1, 0, 0, 0]))
    assert pair["balanced_accuracy"] == 1.0 and pair["false_abstention"] == 0.0
    assert 0.2 < pair["min_relevance"] <= 0.9 and 0.2 < pair["min_evidence"] <= 0.9
