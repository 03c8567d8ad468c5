"""The evidence gate's answerability model (rag/answerability.py): fit, saved, loaded, and used by the pipeline
with the real embedders over data/; the rule score when the model does not fit the dense model."""

from dataclasses import replace

import numpy as np
import pytest

from rag.answerability import DEFAULT_PATH, FEATURES, AnswerabilityModel, fit
from rag.embedder import dense_model_id
from rag.grounding import source_units
from rag.index import DocumentIndex
from rag.pipeline import QueryPipeline
from rag.settings import Settings
from tests.conftest import ScriptedGenerator


def test_fit_weighs_the_feature_that_separates_and_survives_a_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(400, len(FEATURES)))
    rows[:, FEATURES.index("focus")] = 1.0
    labels = (rows[:, FEATURES.index("dense_cosine")] + 0.3 * rng.normal(size=400) > 0.8).astype(int)
    model = fit(rows, labels, "some-dense-model", fitted_on="synthetic")
    weights = dict(zip(FEATURES, model.weights, strict=True))
    assert weights["dense_cosine"] > 1.0
    assert all(abs(w) < weights["dense_cosine"] / 3 for name, w in weights.items() if name != "dense_cosine")
    probabilities = model.probabilities(rows)
    assert probabilities.shape == (400,) and ((probabilities > 0.5) == labels).mean() > 0.9
    # The focus check stays hard: a unit that cannot hold what is asked (factor 0) gets 0, a partial one less.
    unfocused = rows.copy()
    unfocused[:, FEATURES.index("focus")] = 0.0
    assert not model.probabilities(unfocused).any()
    unfocused[:, FEATURES.index("focus")] = 0.5
    assert np.allclose(model.probabilities(unfocused), probabilities / 2)
    model.save(tmp_path / "m.json")
    again = AnswerabilityModel.load(tmp_path / "m.json")
    assert again == model and np.allclose(again.probabilities(rows), probabilities)
    assert again.usable_with("some-dense-model") and not again.usable_with("another-model")


def test_units_in_another_language_go_to_their_own_model_on_the_main_scale(tmp_path):
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(600, len(FEATURES)))
    rows[:, FEATURES.index("focus")] = 1.0
    crossed = rng.random(600) < 0.5
    rows[:, FEATURES.index("cross_lingual")] = crossed.astype(float)
    rows[crossed, FEATURES.index("context_lexical")] = 0.0
    # Same-language units answer by their words, units in another language by the dense cosine alone.
    labels = np.where(crossed, rows[:, FEATURES.index("dense_cosine")] > 1.0,
                      rows[:, FEATURES.index("context_lexical")] > 0.5).astype(int)
    main = fit(rows[~crossed], labels[~crossed], "dense", fitted_on="synthetic")
    assert dict(zip(main.features, main.weights, strict=True))["context_lexical"] > 1.0
    without = tuple(f for f in FEATURES if f != "context_lexical")
    other = replace(fit(rows, labels, "dense", features=without), threshold=0.2)
    assert other.features == without and len(other.weights) == len(FEATURES) - 1
    model = replace(main, threshold=0.4, cross_lingual=other)
    combined = model.probabilities(rows)
    assert np.allclose(combined[~crossed], main.probabilities(rows[~crossed]))
    assert np.allclose(combined[crossed], np.minimum(other.probabilities(rows[crossed]) * 0.4 / 0.2, 1.0))
    # At the main threshold the crossed units pass exactly where their own model passes its own threshold.
    assert ((combined[crossed] >= 0.4) == (other.probabilities(rows[crossed]) >= 0.2)).all()
    model.save(tmp_path / "m.json")
    again = AnswerabilityModel.load(tmp_path / "m.json")
    assert again == model and np.allclose(again.probabilities(rows), combined)
    assert again.usable_with("dense") and not replace(model, cross_lingual=replace(other, dense_model="x")
                                                      ).usable_with("dense")


def test_the_shipped_model_fits_the_default_dense_model_and_says_how_it_was_measured():
    model = AnswerabilityModel.load(DEFAULT_PATH)
    settings = Settings()
    assert model.usable_with(dense_model_id(settings.dense_model, settings.embedder_model))
    assert 0.0 < model.threshold < 1.0 and "tune half" in model.fitted_on
    assert model.report and {"es", "en"} <= set(model.report)
    assert all(0.5 < r["auc"] <= 1.0 for r in model.report.values())
    assert {"en>es", "es>en"} <= set(model.report)
    # units in another language than the question: a model of their own (--cross-lingual), without the lexical
    # context feature (0 there), which the main model reads
    other = model.cross_lingual
    assert other is not None and 0.0 < other.threshold < 1.0 and other.usable_with(model.dense_model)
    assert "context_lexical" in model.features and "context_lexical" not in other.features


@pytest.mark.slow
def test_the_pipeline_gates_on_the_model_answers_and_abstains_on_a_near_miss(demo_settings, embedder):
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, ScriptedGenerator())
    assert pipeline.answerability is not None
    answer = pipeline.answer("¿Cuántos días por semana se puede teletrabajar?")
    assert not answer.abstained and "tres días" in answer.text
    gate = answer.trace.details["evidence_gate"]
    assert gate["by"] == "answerability model" and gate["threshold"] == pytest.approx(pipeline.evidence_threshold)
    evidence = answer.trace.details["evidence"]
    assert evidence and all(0.0 <= e["score"] <= 1.0 for e in evidence) and evidence[0]["score"] >= gate["threshold"]
    # On the documents' topics, but what is asked (a price, a head count) is not stated anywhere (data/qa.jsonl).
    for question in ("¿Cuál es el precio de venta al público del paracetamol?",
                     "How many employees does the thermostat manufacturer have?"):
        near_miss = pipeline.answer(question)
        assert near_miss.abstained and "answerability model" in near_miss.trace.details["abstain_reason"]
    # What the sources hold of the question's terms: one value for all its units; a question made of the
    # policy's words finds them all, one that adds words the documents never use finds fewer.
    def context_lexical(question: str) -> np.ndarray:
        found = pipeline.search(question)
        sources, _ = pipeline.sources(found, demo_settings.top_k)
        return pipeline.unit_features(question, sources, found.language, source_units(sources))[2][
            :, FEATURES.index("context_lexical")]

    held = context_lexical("¿Cuántos días por semana se puede teletrabajar?")
    assert len(held) and np.allclose(held, held[0]) and held[0] == pytest.approx(1.0)
    assert context_lexical("¿Cuántos días por semana se puede teletrabajar desde Marte con un astronauta?")[0] < 0.9
    # A threshold set by the user wins over the model's own.
    strict = QueryPipeline(demo_settings.with_overrides(min_answerability=0.999), pipeline.index, embedder,
                           ScriptedGenerator())
    assert strict.answer("¿Cuántos días por semana se puede teletrabajar?").abstained


@pytest.mark.slow
def test_a_question_in_another_language_than_the_documents_is_answered_by_the_dense_model(demo_settings, embedder):
    # An English question over the Spanish telework policy shares no words with it: the model was fit on
    # XQuAD's questions asked over the other language's documents too (--cross-lingual), where only the
    # multilingual dense cosine speaks for a sentence.
    pipeline = QueryPipeline(demo_settings, DocumentIndex.from_settings(demo_settings), embedder, ScriptedGenerator())
    question = "How many days a week can an employee work from home?"
    found = pipeline.search(question)
    sources, _ = pipeline.sources(found, demo_settings.top_k)
    units = source_units(sources)
    _, keep, rows = pipeline.unit_features(question, sources, found.language, units)
    crossed = rows[:, FEATURES.index("cross_lingual")]
    spanish = np.array([sources[units[i].source_index - 1].chunk.metadata.language == "es" for i in keep])
    assert spanish.any() and (crossed == spanish).all()
    assert np.allclose(rows[:, FEATURES.index("cross_lingual_dense")], crossed * rows[:, FEATURES.index("dense_cosine")])
    assert not rows[crossed == 1, FEATURES.index("context_lexical")].any()  # no shared words to count there
    answer = pipeline.answer(question)
    assert not answer.abstained and "tres días" in answer.text
    assert answer.citations[0].source == "politica_teletrabajo.md"
    # A near miss across languages still abstains when what is asked for (an e-mail address, a date) is in no
    # sentence. (A count of a named noun cannot be checked across languages: "how many employees…?" finds
    # no "employees" in Spanish to stand next to a number; the README says so.)
    for near_miss in ("What is the e-mail address of the telework coordinator?",
                      "In which year was the telework policy approved?"):
        assert pipeline.answer(near_miss).abstained


@pytest.mark.slow
def test_without_a_fitting_model_the_rule_score_gates_and_the_trace_says_why(demo_settings, embedder, tmp_path):
    other = AnswerabilityModel.load(DEFAULT_PATH)
    path = tmp_path / "other.json"
    AnswerabilityModel(**{**other.__dict__, "dense_model": "another-dense-model"}).save(path)
    settings = demo_settings.with_overrides(answerability_model=path)
    pipeline = QueryPipeline(settings, DocumentIndex.from_settings(settings), embedder, ScriptedGenerator())
    assert pipeline.answerability is None and pipeline.evidence_threshold == settings.min_evidence
    answer = pipeline.answer("¿Cuántos días por semana se puede teletrabajar?")
    assert answer.trace.details["evidence_gate"]["by"] == "rule score"
    assert any("another-dense-model" in note for note in answer.trace.notes)
    scores = demo_settings.with_overrides(evidence_gate="scores")
    assert QueryPipeline(scores, pipeline.index, embedder, ScriptedGenerator()).answerability is None
