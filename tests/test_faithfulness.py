"""Faithfulness judges with the real embedder (and the real GGUF for the LLM judge's plumbing)."""

import pytest

from eval.faithfulness import DEFAULT_THRESHOLD, AlignmentJudge, LLMJudge, context_units
from eval.rgb import best_threshold, load_rgb, validate_judge
from rag.grounding import quantities
from tests.conftest import ScriptedGenerator

CONTEXT = ["El paracetamol está indicado para el dolor leve. La dosis máxima en adultos es de 4 g al día.",
           "| Edad | Dosis |\n|---|---|\n| Adultos | 1 g cada 6 h |\n| Niños | 15 mg/kg cada 6 h |"]


def test_alignment_judge_separates_supported_from_invented_claims(embedder):
    judge = AlignmentJudge(embedder)
    faithful = judge.judge("La dosis máxima en adultos es de 4 g al día [1]. Los adultos toman 1 g cada 6 h.",
                           CONTEXT, "es")
    assert faithful.score == 1.0 and all(c.score >= DEFAULT_THRESHOLD for c in faithful.claims)
    invented = judge.judge("La dosis máxima en adultos es de 8 g al día. El paracetamol cura la gripe en dos días.",
                           CONTEXT, "es")
    assert invented.score == 0.0 and len(invented.claims) == 2
    assert judge.judge("", CONTEXT).score == 0.0 and judge.judge("Algo dice.", []).score == 0.0


def test_context_units_keep_table_rows_with_their_header():
    units = context_units(CONTEXT)
    assert "| Edad | Dosis |\n|---|---|\n| Niños | 15 mg/kg cada 6 h |" in units
    assert "La dosis máxima en adultos es de 4 g al día." in units


def test_quantities_keep_their_units():
    assert quantities("20 mg al día, 72 horas y 15 mg/kg; 300 diputados") == {"20 mg", "72 horas", "15", "300"}


def test_llm_judge_extracts_statements_and_asks_for_a_verdict_each():
    generator = ScriptedGenerator("1. The maximum adult dose is 4 g a day.\n2. It cures the flu.", "Yes.", "No")
    result = LLMJudge(generator).judge("The maximum adult dose is 4 g a day and it cures the flu.", CONTEXT)
    assert [(c.claim, c.supported) for c in result.claims] == [
        ("The maximum adult dose is 4 g a day.", True), ("It cures the flu.", False)]
    assert result.score == 0.5
    assert "4 g al día" in generator.calls[1][0]["content"]  # the verdict prompt carries the context


def test_llm_judge_runs_on_the_embedded_gguf(llm):
    result = LLMJudge(llm).judge("The maximum adult dose is 4 g a day.", CONTEXT)
    assert result.claims and 0.0 <= result.score <= 1.0


def test_best_threshold_maximises_accuracy():
    import numpy as np

    assert 0.4 < best_threshold(np.array([0.1, 0.4, 0.7, 0.9]), np.array([0, 0, 1, 1])) < 0.7


def test_alignment_judge_on_rgb_counterfactuals(shared, embedder):
    path = shared / "eval" / "rgb" / "en_fact.dev.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    validation = validate_judge(load_rgb(path), AlignmentJudge(embedder))
    assert validation.items == 50
    assert validation.auc >= 0.8 and validation.accuracy >= 0.75  # measured: AUC 0.864, held-out accuracy 0.88
