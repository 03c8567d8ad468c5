"""`rag eval` on a small BEIR-layout set written here, with the real embedder, Chroma and BM25."""

import json

import pytest

from eval.beir import load_beir
from rag.cli import main

DOCS = {
    "d1": ("Paracetamol", "El paracetamol alivia el dolor y baja la fiebre."),
    "d2": ("Termostato", "The thermostat connects only to 2.4 GHz Wi-Fi networks."),
    "d3": ("Teletrabajo", "Cada persona puede teletrabajar hasta tres días por semana."),
    "d4": ("Garantía", "The warranty covers manufacturing defects for two years."),
}
QUERIES = {"q1": "¿Qué medicamento baja la fiebre?", "q2": "Which Wi-Fi band does the thermostat need?",
           "q3": "¿Cuántos días se puede teletrabajar?", "q4": "How long is the warranty?"}


@pytest.fixture
def beir_dir(tmp_path):
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(
        json.dumps({"_id": d, "title": t, "text": x}, ensure_ascii=False) for d, (t, x) in DOCS.items()))
    (folder / "queries.jsonl").write_text("\n".join(
        json.dumps({"_id": q, "text": t}, ensure_ascii=False) for q, t in QUERIES.items()))
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                              "".join(f"q{i}\td{i}\t1\n" for i in range(1, 5)))
    return folder


def test_rag_eval_reports_the_metric_keys(beir_dir, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["eval", str(beir_dir), "--index", str(tmp_path / "idx"), "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    for name in ("hit_rate", "mrr", "ndcg"):
        for k in (1, 5, 10):
            assert 0.0 <= metrics[f"{name}@{k}"] <= 1.0
    assert metrics["hit_rate@5"] == 1.0 and metrics["mrr@10"] >= 0.75
    # A second run reuses the cached index.
    assert main(["eval", str(beir_dir), "--index", str(tmp_path / "idx"), "--mode", "bm25"]) == 0
    assert "retrieval=bm25" in capsys.readouterr().out


def test_bad_layout_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus.jsonl"):
        load_beir(tmp_path)


def test_qa_layout_over_the_demo_documents(demo_settings, embedder):
    from eval.qa import evaluate_qa, load_qa
    from rag.index import DocumentIndex
    from rag.pipeline import QueryPipeline
    from tests.conftest import DATA, ScriptedGenerator

    items = load_qa(DATA / "qa.jsonl")
    assert sum(not i.answerable for i in items) >= 3
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, ScriptedGenerator())
    report = evaluate_qa(items, pipeline, answer_mode="extractive")
    assert report.metrics["citation_accuracy"] >= 0.8
    assert report.metrics["abstention_unanswerable"] >= 0.75
    assert report.metrics["false_abstention"] <= 0.2
